//! What an upstream exchange (one call, or a paginated series) produced,
//! with what the journal's request summary records of it. Shared by the
//! kinds that call connectors (`call`, `graphql`).
//!
//! The summary's `attempts` counts every request sent, retries included;
//! `status` is the last answer's (a GraphQL error answer's too); a
//! paginated exchange adds `pages` (requested, the failing one included)
//! and `retries` (the requests beyond one per page), so three pages
//! fetched at the first try read `pages: 3, attempts: 3, retries: 0`.

use patchbay_connector::{Collected, Delivered, FetchError, GraphqlResult, PageError, Undelivered};
use serde_json::Value;
use tracing::warn;

use crate::failure::StepError;

pub(crate) struct Exchange {
    pub result: Result<Value, StepError>,
    attempts: u32,
    status: Option<u16>,
    pages: Option<u32>,
}

impl Exchange {
    fn failed(error: FetchError) -> Exchange {
        Exchange {
            attempts: error.attempts(),
            status: error.status(),
            result: Err(StepError::from(error)),
            pages: None,
        }
    }

    pub fn of_send(result: Result<Delivered, Undelivered>) -> Exchange {
        match result {
            Ok(done) => Exchange {
                attempts: done.attempts,
                status: Some(done.response.status),
                result: Ok(done.response.into_value()),
                pages: None,
            },
            Err(failed) => Exchange::failed(FetchError::Call {
                error: failed.error,
                attempts: failed.attempts,
            }),
        }
    }

    pub fn of_graphql(result: Result<GraphqlResult, FetchError>) -> Exchange {
        match result {
            Ok(done) => Exchange {
                attempts: done.attempts,
                status: Some(done.response.status),
                result: Ok(done.data),
                pages: None,
            },
            Err(failed) => Exchange::failed(failed),
        }
    }

    pub fn of_pages(result: Result<Collected, PageError>) -> Exchange {
        match result {
            Ok(collected) => {
                if let Some(warning) = &collected.warning {
                    warn!(pages = collected.pages, "{warning}");
                }
                Exchange {
                    attempts: collected.attempts,
                    status: collected.status,
                    pages: Some(collected.pages),
                    result: Ok(collected.into_value()),
                }
            }
            Err(failed) => Exchange {
                attempts: failed.attempts,
                pages: Some(failed.page),
                ..Exchange::failed(failed.error)
            },
        }
    }

    /// The request summary with the attempts, status and pages added.
    pub fn summarize(&self, mut shown: Value) -> Value {
        if let Value::Object(map) = &mut shown {
            map.insert("attempts".into(), self.attempts.into());
            if let Some(status) = self.status {
                map.insert("status".into(), status.into());
            }
            if let Some(pages) = self.pages {
                map.insert("pages".into(), pages.into());
                map.insert("retries".into(), self.attempts.saturating_sub(pages).into());
            }
        }
        shown
    }
}
