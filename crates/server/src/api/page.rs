//! Pagination shared by every list: `?limit=N&cursor=C`, answered as
//! `{"items": [...], "next_cursor": C | null}`.
//!
//! A cursor is opaque to clients: base64url of the key of the last item
//! returned (the 16 bytes of a run id, or a name). The next page starts
//! after that key, so items added meanwhile neither repeat nor shift the
//! pages. Every text the documented pattern of `cursor` allows is some
//! position in the list: a client cannot build a cursor that is accepted by
//! the document and refused by the server.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use patchbay_store::RunId;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;

/// Items per page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// Largest page a caller can ask for.
pub(crate) const MAX_LIMIT: u32 = 500;

/// Cursors: base64url without padding. Decoding takes any text the
/// documented patterns allow (non-zero trailing bits included), so a
/// cursor is refused only when it cannot be one at all.
const CURSOR: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// `limit` and `cursor` of a list ordered by name (flows, connectors,
/// secrets). Kept as text and parsed here, so that a bad value is answered
/// with a message naming the parameter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct NamePage {
    /// Most items in the answer, from 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Where to continue: the `next_cursor` of the previous page (empty:
    /// from the start).
    #[param(value_type = Option<String>, pattern = "^(?:(?:[A-Za-z0-9_-]{4})*[A-Za-z0-9_-]{2,4})?$")]
    cursor: Option<String>,
}

/// `limit` and `cursor` of a list keyed by UUIDv7 ids, newest first (runs,
/// audit entries).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RunPage {
    /// Most items in the answer, from 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Where to continue: the `next_cursor` of the previous page (empty:
    /// from the start).
    #[param(value_type = Option<String>, pattern = "^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// A validated page request: how many items, after which key.
#[derive(Debug)]
pub(crate) struct Page<K> {
    pub limit: u32,
    /// The key of the last item of the previous page.
    pub after: Option<K>,
}

fn limit(text: Option<&str>) -> Result<u32, ApiError> {
    match text {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid_parameter(
                "limit",
                format!("`limit` must be a whole number from 1 to {MAX_LIMIT}; got `{text}`"),
            )),
        },
    }
}

fn bad_cursor() -> ApiError {
    ApiError::invalid_parameter(
        "cursor",
        "`cursor` is not a cursor: pass the `next_cursor` of the previous page as it is",
    )
}

impl NamePage {
    pub fn page(&self) -> Result<Page<String>, ApiError> {
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(cursor) => {
                let bytes = CURSOR.decode(cursor).map_err(|_| bad_cursor())?;
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
        };
        Ok(Page {
            limit: limit(self.limit.as_deref())?,
            after,
        })
    }
}

impl RunPage {
    pub fn page(&self) -> Result<Page<RunId>, ApiError> {
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(cursor) => Some(decode_run_cursor(cursor).ok_or_else(bad_cursor)?),
        };
        Ok(Page {
            limit: limit(self.limit.as_deref())?,
            after,
        })
    }
}

/// The run id a cursor of [`run_cursor`] continues after.
pub(crate) fn decode_run_cursor(cursor: &str) -> Option<RunId> {
    let bytes: [u8; 16] = CURSOR.decode(cursor).ok()?.try_into().ok()?;
    Some(RunId::from_bytes(bytes))
}

/// The cursor continuing after the run `id`.
pub(crate) fn run_cursor(id: RunId) -> String {
    CURSOR.encode(id.as_bytes())
}

/// The cursor continuing after the name `name`.
pub(crate) fn name_cursor(name: &str) -> String {
    CURSOR.encode(name.as_bytes())
}

impl<K> Page<K> {
    /// Cuts `items` (fetched with one more than the limit) to the page and
    /// makes the cursor of the next one, if there is more.
    pub fn finish<T>(
        &self,
        mut items: Vec<T>,
        cursor: impl Fn(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        let more = items.len() > self.limit as usize;
        items.truncate(self.limit as usize);
        let next = match items.last() {
            Some(last) if more => Some(cursor(last)),
            _ => None,
        };
        (items, next)
    }
}

impl Page<String> {
    /// One page of `items`, which are sorted by `name` already (an
    /// in-memory list: flows, connectors, secrets).
    pub fn of_sorted<T>(
        &self,
        items: Vec<T>,
        name: impl Fn(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        let fetched: Vec<T> = items
            .into_iter()
            .skip_while(|item| {
                self.after
                    .as_ref()
                    .is_some_and(|after| name(item) <= *after)
            })
            .take(self.limit as usize + 1)
            .collect();
        self.finish(fetched, |item| name_cursor(&name(item)))
    }
}

/// Declares a page type (`{items, next_cursor}`) for one item type; one
/// named type per list reads better in the OpenAPI document than a generic.
macro_rules! page_type {
    ($(#[$doc:meta])* $name:ident of $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub(crate) struct $name {
            /// This page's items.
            pub items: Vec<$item>,
            /// Pass as `cursor` to get the next page; `null` on the last page.
            pub next_cursor: Option<String>,
        }

        impl From<(Vec<$item>, Option<String>)> for $name {
            fn from((items, next_cursor): (Vec<$item>, Option<String>)) -> Self {
                $name { items, next_cursor }
            }
        }
    };
}
pub(crate) use page_type;

#[cfg(test)]
mod tests {
    use super::*;

    fn names(limit: Option<&str>, cursor: Option<&str>) -> NamePage {
        NamePage {
            limit: limit.map(str::to_string),
            cursor: cursor.map(str::to_string),
        }
    }

    #[test]
    fn limits_are_checked_and_default_to_50() {
        assert_eq!(names(None, None).page().unwrap().limit, 50);
        assert_eq!(names(Some("500"), None).page().unwrap().limit, 500);
        for bad in ["0", "501", "-1", "x", ""] {
            let error = names(Some(bad), None).page().unwrap_err();
            assert_eq!(error.code, "invalid_request");
            assert!(error.message.contains("`limit`"), "{}", error.message);
        }
    }

    #[test]
    fn name_cursors_round_trip() {
        let page = names(Some("2"), None).page().unwrap();
        let all = ["a", "b", "c"].map(String::from).to_vec();
        let (items, next) = page.of_sorted(all.clone(), Clone::clone);
        assert_eq!(items, ["a", "b"]);
        let next = next.unwrap();
        let page = names(Some("2"), Some(&next)).page().unwrap();
        let (items, last) = page.of_sorted(all, Clone::clone);
        assert_eq!((items, last), (vec!["c".to_string()], None));
        assert!(names(None, Some("!!")).page().is_err());
        assert!(
            names(None, Some("abcde")).page().is_err(),
            "5 characters cannot be base64"
        );
    }

    #[test]
    fn run_cursors_round_trip_and_every_documented_one_decodes() {
        let id = RunId::now_v7();
        let cursor = run_cursor(id);
        assert_eq!(cursor.len(), 22);
        let page = RunPage {
            limit: None,
            cursor: Some(cursor),
        };
        assert_eq!(page.page().unwrap().after, Some(id));
        for cursor in [
            "AAAAAAAAAAAAAAAAAAAAAA",
            "_____________________w",
            "0123456789abcdefghijkQ",
        ] {
            let page = RunPage {
                limit: None,
                cursor: Some(cursor.into()),
            };
            assert!(page.page().is_ok(), "{cursor}");
        }
        let short = RunPage {
            limit: None,
            cursor: Some("AAAA".into()),
        };
        assert!(short.page().is_err());
    }
}
