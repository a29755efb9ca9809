//! A payment gateway: `POST /v1/charges` behind a bearer key, with idempotency keys.
//!
//! Requests are checked in the order a real gateway does: authentication
//! (401), body syntax (400), fields (422), then the idempotency key. A key seen
//! before with the same body replays the original charge (same status and body,
//! plus `Idempotent-Replayed: true`) without creating another; a key reused with
//! a different body is refused with 422, because silently returning a charge for
//! other parameters would hide a caller's bug. Only successful charges are bound
//! to their key, so a request that failed validation can be corrected and retried.
//!
//! `GET /v1/charges/{id}` retrieves a charge. [`PaymentsApi::charges_created`]
//! counts side effects: it is what a test compares with the number of orders
//! to prove that retries and crashes did not charge anyone twice.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::{error, invalid_field, json_object, unix_now};
use crate::sync::lock;
use crate::{MockUpstream, RecordedRequest, Reply, TestkitError};

/// The bearer key the gateway accepts.
pub const PAYMENTS_API_KEY: &str = "sk_test_patchbay_demo";

/// A running payment gateway.
#[derive(Debug)]
pub struct PaymentsApi {
    mock: MockUpstream,
    ledger: Arc<Mutex<Ledger>>,
}

#[derive(Debug, Default)]
struct Ledger {
    charges: Vec<Value>,
    /// Idempotency key -> (request body it was first used with, charge index).
    keys: HashMap<String, (Value, usize)>,
    replays: usize,
}

/// Starts the gateway on an ephemeral port of `127.0.0.1`.
pub async fn start() -> Result<PaymentsApi, TestkitError> {
    start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
}

/// Starts the gateway on `addr`.
pub async fn start_on(addr: SocketAddr) -> Result<PaymentsApi, TestkitError> {
    let mock = MockUpstream::start_on(addr).await?;
    // A std mutex suffices: it guards in-memory bookkeeping and is never held
    // across an await.
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let create = Arc::clone(&ledger);
    mock.route_fn("POST", "/v1/charges", move |req| {
        create_charge(&create, req)
    });
    let read = Arc::clone(&ledger);
    mock.route_fn("GET", "/v1/charges/{id}", move |req| get_charge(&read, req));
    Ok(PaymentsApi { mock, ledger })
}

impl PaymentsApi {
    /// Base URL of the gateway.
    pub fn url(&self) -> String {
        self.mock.url()
    }

    /// The underlying mock: recorded requests, scripted faults, hold/release.
    pub fn mock(&self) -> &MockUpstream {
        &self.mock
    }

    /// Number of charges actually created (replays excluded).
    pub fn charges_created(&self) -> usize {
        lock(&self.ledger).charges.len()
    }

    /// Number of requests answered by replaying an earlier charge.
    pub fn idempotent_replays(&self) -> usize {
        lock(&self.ledger).replays
    }

    /// All charges created, oldest first.
    pub fn charges(&self) -> Vec<Value> {
        lock(&self.ledger).charges.clone()
    }

    /// Stops the gateway.
    pub async fn shutdown(self) {
        self.mock.shutdown().await;
    }
}

fn authorized(req: &RecordedRequest) -> bool {
    req.header("authorization")
        .and_then(|value| value.split_once(' '))
        .is_some_and(|(scheme, key)| {
            scheme.eq_ignore_ascii_case("bearer") && key.trim() == PAYMENTS_API_KEY
        })
}

fn unauthorized() -> Reply {
    error(401, "unauthorized", "missing or invalid bearer API key")
        .with_header("www-authenticate", "Bearer realm=\"payments\"")
}

fn create_charge(ledger: &Mutex<Ledger>, req: &RecordedRequest) -> Reply {
    if !authorized(req) {
        return unauthorized();
    }
    let body = match json_object(req.json.as_ref()) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let charge_fields = match validate(body) {
        Ok(fields) => fields,
        Err(reply) => return reply,
    };
    let key = req.header("idempotency-key").map(str::to_owned);
    let request_body = Value::Object(body.clone());

    let mut ledger = lock(ledger);
    if let Some(key) = &key
        && let Some((first_body, index)) = ledger.keys.get(key)
    {
        if *first_body != request_body {
            return error(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used with different parameters",
            );
        }
        let charge = ledger.charges[*index].clone();
        ledger.replays += 1;
        return Reply::json(201, charge).with_header("idempotent-replayed", "true");
    }
    let ChargeFields {
        amount,
        currency,
        source,
    } = charge_fields;
    let charge = json!({
        "id": format!("ch_{}", ledger.charges.len() + 1),
        "object": "charge",
        "amount": amount,
        "currency": currency,
        "source": source,
        "status": "succeeded",
        "created": unix_now(),
    });
    ledger.charges.push(charge.clone());
    if let Some(key) = key {
        let index = ledger.charges.len() - 1;
        ledger.keys.insert(key, (request_body, index));
    }
    Reply::json(201, charge)
}

struct ChargeFields {
    amount: u64,
    currency: String,
    source: String,
}

fn validate(body: &Map<String, Value>) -> Result<ChargeFields, Reply> {
    let amount = body
        .get("amount")
        .and_then(Value::as_u64)
        .filter(|amount| *amount > 0)
        .ok_or_else(|| invalid_field("amount", "amount must be a positive integer"))?;
    let currency = body
        .get("currency")
        .and_then(Value::as_str)
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        .ok_or_else(|| invalid_field("currency", "currency must be a 3-letter code"))?;
    let source = body
        .get("source")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| invalid_field("source", "source must be a non-empty string"))?;
    Ok(ChargeFields {
        amount,
        currency: currency.to_owned(),
        source: source.to_owned(),
    })
}

fn get_charge(ledger: &Mutex<Ledger>, req: &RecordedRequest) -> Reply {
    if !authorized(req) {
        return unauthorized();
    }
    let id = req.param("id").unwrap_or_default();
    lock(ledger)
        .charges
        .iter()
        .find(|charge| charge["id"] == id)
        .map_or_else(
            || error(404, "not_found", "no such charge"),
            |charge| Reply::json(200, charge.clone()),
        )
}
