//! Realistic upstreams for `patchbay demo`, benchmarks and end-to-end tests.
//!
//! Each module is one third-party API, built on [`MockUpstream`](crate::MockUpstream) so every
//! request is recorded and faults can still be scripted in front of the
//! realistic behaviour (`api.mock().script(...)`):
//!
//! - [`payments`]: charges behind a bearer key, honouring `Idempotency-Key`;
//!   the demo runs two of them, a main gateway and a backup.
//! - [`crm`]: a fixed set of contacts behind `X-Api-Key`, paged by token.
//! - [`erp`]: customers upserted with `PUT` behind basic auth.
//! - [`chat`]: a message-posting API that keeps what it was sent.
//! - [`shop`]: not a server but a webhook sender producing order events.
//!
//! [`DemoUpstreams`] starts the five servers together. Credentials are fixed
//! constants so a generated demo configuration can name them.
//!
//! The payment gateways and the chat API can be taken down on demand
//! (`start_outage` / `end_outage`): while down, every request gets the outage
//! reply (a 503, a reset connection) before the API's own behaviour runs, so
//! a refused request has no side effect. That is what the demo's scripted
//! outages use; scripting would not do, as an outage lasts a time, not a
//! number of requests.

pub mod chat;
pub mod crm;
pub mod erp;
pub mod payments;
pub mod shop;

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

pub use chat::ChatApi;
pub use crm::{CRM_API_KEY, CrmApi};
pub use erp::{ERP_PASSWORD, ERP_USERNAME, ErpApi};
pub use payments::{PAYMENTS_API_KEY, PAYMENTS_BACKUP_API_KEY, PaymentsApi};
pub use shop::ShopReport;

use crate::sync::lock;
use crate::{Reply, TestkitError};

/// The demo's upstream APIs, each on its own loopback port.
#[derive(Debug)]
pub struct DemoUpstreams {
    /// Payment gateway (`Authorization: Bearer` [`PAYMENTS_API_KEY`]).
    pub payments: PaymentsApi,
    /// Backup payment gateway (`Authorization: Bearer`
    /// [`PAYMENTS_BACKUP_API_KEY`]), with a ledger of its own.
    pub payments_backup: PaymentsApi,
    /// CRM (`X-Api-Key:` [`CRM_API_KEY`]).
    pub crm: CrmApi,
    /// ERP (basic auth [`ERP_USERNAME`] / [`ERP_PASSWORD`]).
    pub erp: ErpApi,
    /// Chat API (no authentication).
    pub chat: ChatApi,
}

impl DemoUpstreams {
    /// Starts all five upstreams on ephemeral ports of `127.0.0.1`.
    pub async fn start() -> Result<Self, TestkitError> {
        Ok(Self {
            payments: payments::start().await?,
            payments_backup: payments::start_backup().await?,
            crm: crm::start().await?,
            erp: erp::start().await?,
            chat: chat::start().await?,
        })
    }

    /// Stops all five upstreams.
    pub async fn shutdown(self) {
        self.payments.shutdown().await;
        self.payments_backup.shutdown().await;
        self.crm.shutdown().await;
        self.erp.shutdown().await;
        self.chat.shutdown().await;
    }
}

/// Whether a demo API is down, and what it answered while it was.
///
/// Cloned into the API's route closures; a std mutex suffices as it is never
/// held across an await.
#[derive(Debug, Clone, Default)]
struct Outage(Arc<Mutex<OutageState>>);

#[derive(Debug, Default)]
struct OutageState {
    /// The reply every request gets while down.
    reply: Option<Reply>,
    /// Requests answered with an outage reply, over all outages.
    refused: usize,
}

impl Outage {
    fn start(&self, reply: Reply) {
        lock(&self.0).reply = Some(reply);
    }

    fn end(&self) {
        lock(&self.0).reply = None;
    }

    fn refused(&self) -> usize {
        lock(&self.0).refused
    }

    /// The outage reply for a request that arrives now, if the API is down.
    fn intercept(&self) -> Option<Reply> {
        let mut state = lock(&self.0);
        let reply = state.reply.clone()?;
        state.refused += 1;
        Some(reply)
    }
}

/// Error reply shared by the demo APIs: `{"error": code, "message": ...}`.
fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({ "error": code, "message": message }))
}

/// 422 naming the offending field.
fn invalid_field(field: &str, message: &str) -> Reply {
    Reply::json(
        422,
        json!({ "error": "invalid_field", "field": field, "message": message }),
    )
}

/// The request body as a JSON object, or the 400 to answer instead.
fn json_object(json: Option<&Value>) -> Result<&serde_json::Map<String, Value>, Reply> {
    json.and_then(Value::as_object)
        .ok_or_else(|| error(400, "invalid_json", "request body must be a JSON object"))
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
