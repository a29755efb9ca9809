//! The `cursor` style: the next page's cursor is a jq value of this page
//! (`paginate.cursor.from`), sent as the query parameter `param`; `null` or
//! `""` ends pagination.
//!
//! A number is accepted as well as a string (some APIs count), and sent as
//! its decimal text. The cursor itself is the position compared between
//! pages, so an upstream that hands out the same cursor twice is caught.

use patchbay_expr::{Expr, Vars};
use serde_json::Value;

use super::{Next, eval, type_name, with_query};
use crate::call::CallRequest;

#[derive(Clone, Debug)]
pub(super) struct Cursor {
    pub param: String,
    pub from: Expr,
}

impl Cursor {
    /// The request for the page after the one `view` shows, if any.
    pub(super) fn next(
        &self,
        request: &CallRequest,
        view: &Value,
        vars: &Vars<'_>,
    ) -> Result<Option<Next>, String> {
        let cursor = match eval("cursor.from", &self.from, view, vars)? {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            other => {
                return Err(format!(
                    "`paginate.cursor.from` produced {}, expected a string or number",
                    type_name(&other)
                ));
            }
        };
        Ok(cursor.map(|cursor| with_query(request, &self.param, cursor)))
    }
}
