//! What an upstream exchange (one call, or a paginated series) produced,
//! with what the journal's request summary records of it. Shared by the
//! kinds that call connectors (`call`, `graphql`).

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
    fn failed(error: FetchError, pages: Option<u32>) -> Exchange {
        Exchange {
            attempts: error.attempts(),
            status: error.status(),
            result: Err(StepError::from(error)),
            pages,
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
            Err(failed) => Exchange::failed(
                FetchError::Call {
                    error: failed.error,
                    attempts: failed.attempts,
                },
                None,
            ),
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
            Err(failed) => Exchange::failed(failed, None),
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
                    status: None,
                    pages: Some(collected.pages),
                    result: Ok(collected.into_value()),
                }
            }
            Err(failed) => Exchange::failed(failed.error, Some(failed.page)),
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
            }
        }
        shown
    }
}
