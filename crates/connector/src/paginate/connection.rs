//! The `connection` style, for `graphql` steps: a GraphQL connection's
//! `pageInfo { hasNextPage endCursor }`, found by the jq of
//! `paginate.connection.from`. `hasNextPage: false` ends pagination; the
//! next page is the same operation with `endCursor` in the variable named by
//! `paginate.connection.variable`.
//!
//! Items are the connection's `nodes`, or the `node` of each of its `edges`,
//! unless `paginate.items` says otherwise. A connection without
//! `pageInfo.hasNextPage` is an error rather than the last page: the query
//! most likely forgot to select it, and stopping silently after page 1 would
//! hide that.

use patchbay_expr::{Expr, Vars};
use serde_json::{Map, Value};

use super::{Next, eval, into_items, type_name};
use crate::call::CallRequest;

#[derive(Clone, Debug)]
pub(super) struct Connection {
    pub from: Expr,
    pub variable: String,
}

impl Connection {
    /// The page's items and, when there is a next page, its request.
    /// `configured` holds the items `paginate.items` found, if set.
    pub(super) fn read(
        &self,
        request: &CallRequest,
        view: &Value,
        vars: &Vars<'_>,
        configured: Option<Vec<Value>>,
    ) -> Result<(Vec<Value>, Option<Next>), String> {
        let connection = eval("connection.from", &self.from, view, vars)?;
        let Value::Object(connection) = connection else {
            return Err(format!(
                "`paginate.connection.from` produced {}, expected a connection object \
                 with `pageInfo`",
                type_name(&connection)
            ));
        };
        let items = match configured {
            Some(items) => items,
            None => connection_items(&connection)?,
        };
        let info = connection.get("pageInfo");
        let has_next = info
            .and_then(|i| i.get("hasNextPage"))
            .and_then(Value::as_bool)
            .ok_or("the connection has no `pageInfo.hasNextPage`; add `pageInfo { hasNextPage endCursor }` to the query")?;
        if !has_next {
            return Ok((items, None));
        }
        let cursor = match info.and_then(|i| i.get("endCursor")) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(
                    "`pageInfo.hasNextPage` is true but `endCursor` is missing or empty".into(),
                );
            }
        };
        let mut next = request.clone();
        if let Some(Value::Object(body)) = &mut next.body {
            let variables = body
                .entry("variables")
                .or_insert_with(|| Value::Object(Map::new()));
            if !variables.is_object() {
                *variables = Value::Object(Map::new());
            }
            if let Value::Object(variables) = variables {
                variables.insert(self.variable.clone(), Value::String(cursor.clone()));
            }
        }
        Ok((items, Some((cursor, next))))
    }
}

/// A connection's `nodes`, or the `node` of each of its `edges`.
fn connection_items(connection: &Map<String, Value>) -> Result<Vec<Value>, String> {
    if let Some(nodes) = connection.get("nodes").filter(|n| !n.is_null()) {
        return into_items(nodes.clone(), "the connection's `nodes`");
    }
    match connection.get("edges") {
        Some(Value::Array(edges)) => Ok(edges
            .iter()
            .map(|edge| edge.get("node").cloned().unwrap_or(Value::Null))
            .collect()),
        Some(Value::Null) | None => Err(
            "the connection has neither `nodes` nor `edges`; select one, or set `paginate.items`"
                .into(),
        ),
        Some(other) => Err(format!(
            "the connection's `edges` is {}, expected an array",
            type_name(other)
        )),
    }
}
