//! The `page` style: numbered pages, from `start`, in the query parameter
//! `param` (and the page size in `size_param`, when both are set). An empty
//! page, or one shorter than `size`, ends pagination.
//!
//! The next number is the one in the request just sent, plus one: the
//! request is the only record of where pagination stands. A number that
//! would overflow ends pagination instead of wrapping.

use serde_json::Value;

use super::{Next, current_number, set_query, with_query};
use crate::call::CallRequest;

#[derive(Clone, Debug)]
pub(super) struct Numbered {
    pub param: String,
    pub start: i64,
    pub size_param: Option<String>,
    pub size: Option<u32>,
}

impl Numbered {
    /// Puts the first page's number (and size) on `first`; returns its
    /// position.
    pub(super) fn start(&self, first: &mut CallRequest) -> String {
        set_query(first, &self.param, self.start.to_string());
        if let (Some(size_param), Some(size)) = (&self.size_param, self.size) {
            set_query(first, size_param, size.to_string());
        }
        self.start.to_string()
    }

    /// The request for the page after `request`, whose answer held `items`.
    pub(super) fn next(&self, request: &CallRequest, items: &[Value]) -> Option<Next> {
        let last = items.is_empty() || self.size.is_some_and(|size| items.len() < size as usize);
        let number = current_number(request, &self.param);
        match number.and_then(|n| n.checked_add(1)) {
            Some(n) if !last => Some(with_query(request, &self.param, n.to_string())),
            _ => None,
        }
    }
}
