//! What both stores' listings share: how many rows a page holds, and the
//! statement a [`RunFilter`] makes. Only two things differ by database, and
//! the callers pass them: how the error text is searched, and how the page
//! size is written (SQLite's `LIMIT +$n` keeps its planner off the wrong
//! index).

use std::fmt::Write as _;

use crate::{RunFilter, RunStatus};

/// Page size when a filter does not name one.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// Largest page a caller can ask for.
pub(crate) const MAX_LIMIT: u32 = 1000;

/// The page size for `asked` (0: the default).
pub(crate) fn page_limit(asked: u32) -> u32 {
    match asked {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    }
}

/// The text of a runs listing for `filter`: `head` (`SELECT … FROM runs`),
/// a condition per filter given, in the order its values are bound (flow,
/// status, before, since, until, error text), then the page size as the
/// last parameter. `error_contains` writes the error search for parameter
/// `$n`; `limit` precedes the page size's placeholder (`LIMIT $`).
///
/// The text is assembled only from fixed fragments, never from filter
/// values (those are bound); each combination of filters is its own
/// statement, which the connection prepares once.
pub(crate) fn runs_sql(
    head: &str,
    filter: &RunFilter,
    error_contains: impl Fn(usize) -> String,
    limit: &str,
) -> String {
    let mut sql = head.to_string();
    let mut conditions = Vec::new();
    let mut param = 0;
    let mut next = |column: &str, op: &str| {
        param += 1;
        format!("{column} {op} ${param}")
    };
    if filter.flow.is_some() {
        conditions.push(next("flow", "="));
    }
    if let Some(status) = filter.status {
        conditions.push(next("status", "="));
        // Neither planner infers the partial `runs_unsucceeded` index's
        // condition from `status = $n`; spelling it out lets them use it.
        if status != RunStatus::Succeeded {
            conditions.push("status <> 'succeeded'".into());
        }
    }
    if filter.before.is_some() {
        conditions.push(next("id", "<"));
    }
    // Ids are UUIDv7, led by their creation time in milliseconds: a time
    // bound is an id bound, served by the id's index like the paging.
    if filter.since.is_some() {
        conditions.push(next("id", ">="));
    }
    if filter.until.is_some() {
        conditions.push(next("id", "<"));
    }
    if filter.error_contains.is_some() {
        param += 1;
        conditions.push(error_contains(param));
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    // Writing to a String cannot fail.
    let _ = write!(sql, " ORDER BY id DESC {limit}{}", param + 1);
    sql
}
