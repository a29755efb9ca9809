//! A CRM: `GET /contacts` behind an API key, paged with opaque page tokens.
//!
//! The dataset is fixed ([`contacts`]: 25 contacts ordered by id, each with a
//! distinct `updated_at`) so sync tests can assert exact results. Query
//! parameters:
//!
//! - `limit`: page size, default 10, at most 100 (larger values are clamped,
//!   zero or non-numbers are a 400);
//! - `page_token`: the `next_page_token` of the previous page (an unknown token
//!   is a 400, as real APIs refuse tokens they did not issue; empty means the
//!   first page);
//! - `updated_since`: an RFC 3339 UTC timestamp; only contacts updated strictly
//!   after it are listed, which is what an incremental sync needs.
//!
//! The last page has `next_page_token: null`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::error;
use crate::{MockUpstream, RecordedRequest, Reply, TestkitError};

/// The API key the CRM accepts in `X-Api-Key`.
pub const CRM_API_KEY: &str = "crm_demo_key_4f2a";

/// Number of contacts in the dataset.
pub const CONTACT_COUNT: usize = 25;

/// Page size when `limit` is absent.
pub const DEFAULT_PAGE_SIZE: usize = 10;

/// Largest page size served.
pub const MAX_PAGE_SIZE: usize = 100;

const FIRST_NAMES: [&str; CONTACT_COUNT] = [
    "Ada",
    "Alan",
    "Barbara",
    "Brian",
    "Claude",
    "Dennis",
    "Donald",
    "Edsger",
    "Frances",
    "Grace",
    "Hedy",
    "Ivan",
    "John",
    "Ken",
    "Leslie",
    "Linus",
    "Margaret",
    "Niklaus",
    "Radia",
    "Rob",
    "Shafi",
    "Sophie",
    "Tim",
    "Whitfield",
    "Yukihiro",
];

const LAST_NAMES: [&str; CONTACT_COUNT] = [
    "Lovelace",
    "Turing",
    "Liskov",
    "Kernighan",
    "Shannon",
    "Ritchie",
    "Knuth",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Lamarr",
    "Sutherland",
    "McCarthy",
    "Thompson",
    "Lamport",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Pike",
    "Goldwasser",
    "Wilson",
    "Berners-Lee",
    "Diffie",
    "Matsumoto",
];

/// The fixed dataset, ordered by id (`ct_001` ... `ct_025`).
///
/// `updated_at` is unique per contact but not in id order, so a cursor on
/// `updated_at` is a real test of the caller's logic.
pub fn contacts() -> Vec<Value> {
    (0..CONTACT_COUNT)
        .map(|i| {
            let first = FIRST_NAMES[i];
            let last = LAST_NAMES[i];
            // Day i+1 of January 2026 at a scattered hour.
            let updated_at = format!(
                "2026-01-{:02}T{:02}:{:02}:00Z",
                i + 1,
                (i * 7) % 24,
                (i * 13) % 60
            );
            json!({
                "id": format!("ct_{:03}", i + 1),
                "first_name": first,
                "last_name": last,
                "email": format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase()),
                "updated_at": updated_at,
            })
        })
        .collect()
}

/// A running CRM.
#[derive(Debug)]
pub struct CrmApi {
    mock: MockUpstream,
    pages_served: Arc<AtomicUsize>,
}

/// Starts the CRM on an ephemeral port of `127.0.0.1`.
pub async fn start() -> Result<CrmApi, TestkitError> {
    start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
}

/// Starts the CRM on `addr`.
pub async fn start_on(addr: SocketAddr) -> Result<CrmApi, TestkitError> {
    let mock = MockUpstream::start_on(addr).await?;
    let dataset = Arc::new(contacts());
    let pages_served = Arc::new(AtomicUsize::new(0));
    let served = Arc::clone(&pages_served);
    mock.route_fn("GET", "/contacts", move |req| {
        let reply = list_contacts(&dataset, req);
        if reply.status == 200 {
            served.fetch_add(1, Ordering::SeqCst);
        }
        reply
    });
    Ok(CrmApi { mock, pages_served })
}

impl CrmApi {
    /// Base URL of the CRM.
    pub fn url(&self) -> String {
        self.mock.url()
    }

    /// The underlying mock: recorded requests, scripted faults, hold/release.
    pub fn mock(&self) -> &MockUpstream {
        &self.mock
    }

    /// Number of pages answered with 200.
    pub fn pages_served(&self) -> usize {
        self.pages_served.load(Ordering::SeqCst)
    }

    /// Stops the CRM.
    pub async fn shutdown(self) {
        self.mock.shutdown().await;
    }
}

fn list_contacts(dataset: &[Value], req: &RecordedRequest) -> Reply {
    if req.header("x-api-key") != Some(CRM_API_KEY) {
        return error(401, "unauthorized", "missing or invalid X-Api-Key");
    }
    let limit = match req.query_param("limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(0) | Err(_) => {
                return error(400, "invalid_limit", "limit must be a positive integer");
            }
            Ok(n) => n.min(MAX_PAGE_SIZE),
        },
    };
    let since = match req.query_param("updated_since") {
        None => None,
        Some(raw) => match timestamp_prefix(raw) {
            Some(prefix) => Some(prefix),
            None => {
                return error(
                    400,
                    "invalid_updated_since",
                    "updated_since must be an RFC 3339 UTC timestamp like 2026-01-01T00:00:00Z",
                );
            }
        },
    };
    let selected: Vec<&Value> = dataset
        .iter()
        .filter(|contact| {
            since.is_none_or(|since| {
                contact["updated_at"]
                    .as_str()
                    .and_then(timestamp_prefix)
                    .is_some_and(|updated| updated > since)
            })
        })
        .collect();
    let offset = match req.query_param("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match decode_token(token).filter(|o| *o > 0 && *o < selected.len()) {
            Some(offset) => offset,
            None => return error(400, "invalid_page_token", "page_token is not valid"),
        },
    };
    let end = (offset + limit).min(selected.len());
    let next = (end < selected.len()).then(|| encode_token(end));
    Reply::json(
        200,
        json!({ "contacts": &selected[offset..end], "next_page_token": next }),
    )
}

/// `YYYY-MM-DDTHH:MM:SS` of a UTC timestamp (optional fraction, then `Z`).
///
/// Comparing these prefixes as strings orders them in time; a fraction can
/// only move a timestamp later within the same second, and the dataset has
/// whole seconds, so `updated > since` on prefixes is exact for it.
fn timestamp_prefix(raw: &str) -> Option<&str> {
    let rest = raw.strip_suffix('Z').or_else(|| raw.strip_suffix('z'))?;
    let (base, fraction) = rest.split_at_checked(19)?;
    let shape_ok = base.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T' || b == b't',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    let fraction_ok = fraction.is_empty()
        || fraction
            .strip_prefix('.')
            .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    (shape_ok && fraction_ok).then_some(base)
}

fn encode_token(offset: usize) -> String {
    format!("pt_{offset:x}")
}

fn decode_token(token: &str) -> Option<usize> {
    usize::from_str_radix(token.strip_prefix("pt_")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_is_unique_and_well_formed() {
        let all = contacts();
        assert_eq!(all.len(), CONTACT_COUNT);
        let mut stamps: Vec<_> = all
            .iter()
            .map(|c| c["updated_at"].as_str().unwrap())
            .collect();
        assert!(stamps.iter().all(|s| timestamp_prefix(s).is_some()));
        stamps.sort_unstable();
        stamps.dedup();
        assert_eq!(stamps.len(), CONTACT_COUNT);
    }

    #[test]
    fn timestamps_are_parsed_strictly() {
        assert_eq!(
            timestamp_prefix("2026-01-02T03:04:05Z"),
            Some("2026-01-02T03:04:05")
        );
        assert_eq!(
            timestamp_prefix("2026-01-02T03:04:05.123Z"),
            Some("2026-01-02T03:04:05")
        );
        assert_eq!(timestamp_prefix("2026-01-02T03:04:05+01:00"), None);
        assert_eq!(timestamp_prefix("2026-01-02"), None);
        assert_eq!(timestamp_prefix("2026-01-02T03:04:05.Z"), None);
        assert_eq!(timestamp_prefix("yesterday"), None);
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(decode_token(&encode_token(20)), Some(20));
        assert_eq!(decode_token("20"), None);
        assert_eq!(decode_token("pt_zz"), None);
    }
}
