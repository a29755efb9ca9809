//! The audit log's records: who did what to the node through its
//! management API, when, from where, and how it ended.
//!
//! The server writes an entry ahead of each mutating action and completes
//! it with the status it answered ([`crate::Store::record_audit`] upserts
//! by id), so an action never happens without its entry. Entries hold the
//! route template and the target named in the path, never a request body:
//! a secret's value travels in one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An audit entry's identifier: a UUIDv7, so ids sort by time.
pub type AuditId = uuid::Uuid;

/// Who is recorded when no token names the caller: the API is open, or
/// the token presented is not one the node knows.
pub const ANONYMOUS: &str = "anonymous";

/// Longest `target` kept, in characters; a longer path parameter is cut.
pub const MAX_AUDIT_TARGET_CHARS: usize = 256;

/// One management API request that changed something, or was refused for
/// its token.
// The management API shows entries as stored: these doc comments are the
// API's reference too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Orders entries by time (a UUIDv7).
    #[cfg_attr(feature = "openapi", schema(value_type = uuid::Uuid))]
    pub id: AuditId,
    /// When the request arrived.
    pub at: DateTime<Utc>,
    /// Who: the configured name of the API token, or `anonymous` when no
    /// token was needed (an open API) or the one presented is unknown.
    pub actor: String,
    /// The HTTP method.
    pub method: String,
    /// The route template, e.g. `/api/v1/runs/{id}/replay`.
    pub route: String,
    /// What the route acts on: the run id, flow or secret name in its
    /// path; `null` for routes without one.
    pub target: Option<String>,
    /// The HTTP status answered; `null` when the node stopped before it
    /// answered (the action may or may not have taken effect).
    pub status: Option<u16>,
    /// The address (`ip:port`) of the connection the request came on.
    pub peer: Option<String>,
}

/// Which entries [`crate::Store::list_audit`] returns, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only entries older than this one (for paging).
    pub before: Option<AuditId>,
    /// At most this many; 0 means the default of 50.
    pub limit: u32,
}

/// `text` cut to [`MAX_AUDIT_TARGET_CHARS`] characters.
pub fn audit_target(text: &str) -> String {
    text.chars().take(MAX_AUDIT_TARGET_CHARS).collect()
}
