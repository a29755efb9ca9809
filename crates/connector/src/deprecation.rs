//! Deprecation and sunset notices: what an upstream says, in its answers,
//! of the endpoints a connector calls going away.
//!
//! Two response headers carry it: `Deprecation` (RFC 9745: a structured
//! date, `@1688169599`; older drafts and many providers send `true` or an
//! HTTP date) says the resource is deprecated, and since when; `Sunset` (RFC
//! 8594: an HTTP date) says when it will stop answering. A `Link` with
//! `rel="deprecation"` or `rel="sunset"` points at the provider's notice.
//!
//! Every answer carrying either header counts in
//! `patchbay_connector_deprecation_notices_total`; the connector remembers
//! the newest notice (endpoint, dates, link, when first and last seen) for
//! its health, and logs a notice once per distinct endpoint and dates, so a
//! deprecated endpoint called a million times is one log line. Distinct
//! notices remembered for that purpose are bounded
//! ([`MAX_NOTICES_LOGGED`]): beyond that they are counted, not logged.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// Distinct notices a connector logs; later ones are only counted.
const MAX_NOTICES_LOGGED: usize = 64;

/// The newest deprecation notice an upstream gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeprecationNotice {
    /// The endpoint that answered with it (`GET /v1/contacts`).
    pub endpoint: String,
    /// Since when the resource is deprecated, as the upstream said it
    /// (`true` when it gave no date).
    pub deprecated: Option<String>,
    /// The same as an instant, when it is a date.
    pub deprecated_at: Option<DateTime<Utc>>,
    /// When the resource stops answering, as the upstream said it.
    pub sunset: Option<String>,
    /// The same as an instant, when it parses.
    pub sunset_at: Option<DateTime<Utc>>,
    /// The provider's notice (`Link` with `rel="deprecation"` or `"sunset"`).
    pub link: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// What tells notices apart for logging: endpoint, deprecation, sunset.
type NoticeKey = (String, Option<String>, Option<String>);

/// What a connector remembers of the notices it got.
#[derive(Debug, Default)]
pub(crate) struct Notices {
    /// A std mutex: held for a copy or an update, never across an await.
    newest: Mutex<Option<DeprecationNotice>>,
    logged: Mutex<HashSet<NoticeKey>>,
}

impl Notices {
    /// Takes over `earlier`'s notices (see [`crate::recent::RecentCalls::adopt`]).
    pub(crate) fn adopt(&self, earlier: &Notices) {
        let newest = earlier
            .newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let logged = earlier
            .logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        *self.newest.lock().unwrap_or_else(PoisonError::into_inner) = newest;
        *self.logged.lock().unwrap_or_else(PoisonError::into_inner) = logged;
    }

    /// Looks at an answer's headers (names lower case); `endpoint` is the
    /// request (`GET /v1/contacts`). Returns the notice the answer carries,
    /// if any, and whether this connector has not logged it yet.
    pub(crate) fn observe(
        &self,
        endpoint: &str,
        headers: &Value,
        now: DateTime<Utc>,
    ) -> Option<(DeprecationNotice, bool)> {
        let header = |name: &str| headers.get(name).and_then(Value::as_str).map(str::trim);
        let deprecated = header("deprecation").filter(|v| !v.is_empty() && *v != "false");
        let sunset = header("sunset").filter(|v| !v.is_empty());
        if deprecated.is_none() && sunset.is_none() {
            return None;
        }
        let mut notice = DeprecationNotice {
            endpoint: endpoint.to_string(),
            deprecated: deprecated.map(str::to_string),
            deprecated_at: deprecated.and_then(parse_date),
            sunset: sunset.map(str::to_string),
            sunset_at: sunset.and_then(parse_date),
            link: header("link").and_then(notice_link),
            first_seen: now,
            last_seen: now,
        };
        {
            let mut newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(known) = newest.as_ref()
                && known.endpoint == notice.endpoint
                && known.deprecated == notice.deprecated
                && known.sunset == notice.sunset
            {
                notice.first_seen = known.first_seen;
            }
            *newest = Some(notice.clone());
        }
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (
            notice.endpoint.clone(),
            notice.deprecated.clone(),
            notice.sunset.clone(),
        );
        let new = logged.len() < MAX_NOTICES_LOGGED && logged.insert(key);
        Some((notice, new))
    }

    /// The newest notice, if any.
    pub(crate) fn newest(&self) -> Option<DeprecationNotice> {
        self.newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An RFC 9745 structured date (`@1688169599`) or an HTTP date.
fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    if let Some(seconds) = text.strip_prefix('@') {
        return DateTime::from_timestamp(seconds.parse().ok()?, 0);
    }
    let time = httpdate::parse_http_date(text).ok()?;
    Some(DateTime::<Utc>::from(time))
}

/// The target of a `Link` whose `rel` is `deprecation` or `sunset`.
fn notice_link(field: &str) -> Option<String> {
    field.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let rel = params.split(';').find_map(|param| {
            let (key, value) = param.split_once('=')?;
            (key.trim().eq_ignore_ascii_case("rel")).then(|| value.trim().trim_matches('"'))
        })?;
        rel.split_whitespace()
            .any(|r| r.eq_ignore_ascii_case("deprecation") || r.eq_ignore_ascii_case("sunset"))
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn reads_both_headers_and_the_link() {
        let notices = Notices::default();
        let headers = json!({
            "deprecation": "@1688169599",
            "sunset": "Wed, 11 Nov 2026 23:59:59 GMT",
            "link": "<https://api.example.com/changes>; rel=\"deprecation\"; type=\"text/html\", <https://api.example.com/v2>; rel=\"successor-version\""
        });
        let (notice, new) = notices
            .observe("GET /v1/contacts", &headers, at(100))
            .expect("a notice");
        assert!(new);
        assert_eq!(notice.deprecated_at, Some(at(1_688_169_599)));
        assert_eq!(
            notice.sunset_at.map(|t| t.to_rfc3339()),
            Some("2026-11-11T23:59:59+00:00".into())
        );
        assert_eq!(
            notice.link.as_deref(),
            Some("https://api.example.com/changes")
        );
        // The same notice again: remembered as seen later, not new.
        let (_, new) = notices
            .observe("GET /v1/contacts", &headers, at(200))
            .unwrap();
        assert!(!new);
        let newest = notices.newest().unwrap();
        assert_eq!((newest.first_seen, newest.last_seen), (at(100), at(200)));
    }

    #[test]
    fn a_legacy_true_and_no_headers() {
        let notices = Notices::default();
        assert!(notices.observe("GET /x", &json!({}), at(1)).is_none());
        assert!(
            notices
                .observe("GET /x", &json!({"deprecation": "false"}), at(1))
                .is_none()
        );
        let (notice, _) = notices
            .observe("GET /x", &json!({"deprecation": "true"}), at(1))
            .unwrap();
        assert_eq!(notice.deprecated.as_deref(), Some("true"));
        assert_eq!(notice.deprecated_at, None);
    }
}
