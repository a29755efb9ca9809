//! The `offset` style: the query parameter `param` starts at 0 and grows by
//! the items received, with `limit` items asked for in `limit_param`. A
//! page shorter than `limit` ends pagination.
//!
//! The offset grows by the items that arrived, not by `limit`, so an
//! upstream that sends more than it was asked for is not read twice. As
//! with `page`, the next offset is computed from the request just sent, and
//! one that would overflow ends pagination.

use serde_json::Value;

use super::{Next, current_number, set_query, with_query};
use crate::call::CallRequest;

#[derive(Clone, Debug)]
pub(super) struct Offset {
    pub param: String,
    pub limit_param: String,
    pub limit: u32,
}

impl Offset {
    /// Puts offset 0 and the limit on `first`; returns its position.
    pub(super) fn start(&self, first: &mut CallRequest) -> String {
        set_query(first, &self.param, "0".into());
        set_query(first, &self.limit_param, self.limit.to_string());
        "0".into()
    }

    /// The request for the page after `request`, whose answer held `items`.
    pub(super) fn next(&self, request: &CallRequest, items: &[Value]) -> Option<Next> {
        let last = items.len() < self.limit as usize;
        let offset = current_number(request, &self.param);
        match offset.and_then(|o| o.checked_add(items.len() as i64)) {
            Some(o) if !last => Some(with_query(request, &self.param, o.to_string())),
            _ => None,
        }
    }
}
