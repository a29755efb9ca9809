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
//!
//! [`start`] is the main gateway; [`start_backup`] an independent second one
//! (its own key, its own ledger, charge ids `chb_N`), for failover. Keys
//! are only known to the gateway that saw them, so proving that failover
//! charged nobody twice means comparing [`PaymentsApi::charge_keys`] across
//! both.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::{Outage, error, invalid_field, json_object, unix_now};
use crate::sync::lock;
use crate::{MockUpstream, RecordedRequest, Reply, TestkitError};

/// The bearer key the main gateway accepts.
pub const PAYMENTS_API_KEY: &str = "sk_test_patchbay_demo";

/// The bearer key the backup gateway accepts.
pub const PAYMENTS_BACKUP_API_KEY: &str = "sk_test_patchbay_backup";

/// A running payment gateway.
#[derive(Debug)]
pub struct PaymentsApi {
    mock: MockUpstream,
    ledger: Arc<Mutex<Ledger>>,
    outage: Outage,
}

/// What tells one gateway from another.
struct Identity {
    api_key: String,
    /// Prefix of charge ids, before the sequence number.
    charge_prefix: String,
}

#[derive(Debug, Default)]
struct Ledger {
    charges: Vec<Value>,
    /// Idempotency key -> (request body it was first used with, charge index).
    keys: HashMap<String, (Value, usize)>,
    replays: usize,
}

/// Starts the main gateway on an ephemeral port of `127.0.0.1`.
pub async fn start() -> Result<PaymentsApi, TestkitError> {
    start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
}

/// Starts the main gateway on `addr`: key [`PAYMENTS_API_KEY`], charges `ch_N`.
pub async fn start_on(addr: SocketAddr) -> Result<PaymentsApi, TestkitError> {
    start_on_with(addr, PAYMENTS_API_KEY, "ch_").await
}

/// Starts the backup gateway on an ephemeral port of `127.0.0.1`: key
/// [`PAYMENTS_BACKUP_API_KEY`], charges `chb_N`.
pub async fn start_backup() -> Result<PaymentsApi, TestkitError> {
    start_on_with(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        PAYMENTS_BACKUP_API_KEY,
        "chb_",
    )
    .await
}

/// Starts a gateway on `addr` accepting bearer `api_key`, numbering its
/// charges `<charge_prefix>1`, `<charge_prefix>2`...
pub async fn start_on_with(
    addr: SocketAddr,
    api_key: &str,
    charge_prefix: &str,
) -> Result<PaymentsApi, TestkitError> {
    let mock = MockUpstream::start_on(addr).await?;
    let identity = Arc::new(Identity {
        api_key: api_key.to_owned(),
        charge_prefix: charge_prefix.to_owned(),
    });
    let outage = Outage::default();
    // A std mutex suffices: it guards in-memory bookkeeping and is never held
    // across an await.
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (create, who, down) = (Arc::clone(&ledger), Arc::clone(&identity), outage.clone());
    mock.route_fn("POST", "/v1/charges", move |req| {
        down.intercept()
            .unwrap_or_else(|| create_charge(&create, &who, req))
    });
    let (read, down) = (Arc::clone(&ledger), outage.clone());
    mock.route_fn("GET", "/v1/charges/{id}", move |req| {
        down.intercept()
            .unwrap_or_else(|| get_charge(&read, &identity, req))
    });
    Ok(PaymentsApi {
        mock,
        ledger,
        outage,
    })
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

    /// The idempotency keys that created a charge, one per charge made with
    /// a key (a replay adds none).
    pub fn charge_keys(&self) -> Vec<String> {
        lock(&self.ledger).keys.keys().cloned().collect()
    }

    /// Takes the gateway down: until [`PaymentsApi::end_outage`], every
    /// request is answered with `reply` (e.g. `Reply::status(503)` or
    /// [`Reply::reset`]) and charges nothing. Replaces an outage in force.
    pub fn start_outage(&self, reply: Reply) {
        self.outage.start(reply);
    }

    /// Brings the gateway back; its ledger is as the outage found it.
    pub fn end_outage(&self) {
        self.outage.end();
    }

    /// Requests answered with an outage reply, over all outages.
    pub fn outage_replies(&self) -> usize {
        self.outage.refused()
    }

    /// Stops the gateway.
    pub async fn shutdown(self) {
        self.mock.shutdown().await;
    }
}

fn authorized(identity: &Identity, req: &RecordedRequest) -> bool {
    req.header("authorization")
        .and_then(|value| value.split_once(' '))
        .is_some_and(|(scheme, key)| {
            scheme.eq_ignore_ascii_case("bearer") && key.trim() == identity.api_key
        })
}

fn unauthorized() -> Reply {
    error(401, "unauthorized", "missing or invalid bearer API key")
        .with_header("www-authenticate", "Bearer realm=\"payments\"")
}

fn create_charge(ledger: &Mutex<Ledger>, identity: &Identity, req: &RecordedRequest) -> Reply {
    if !authorized(identity, req) {
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
        "id": format!("{}{}", identity.charge_prefix, ledger.charges.len() + 1),
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

fn get_charge(ledger: &Mutex<Ledger>, identity: &Identity, req: &RecordedRequest) -> Reply {
    if !authorized(identity, req) {
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn charge(api: &PaymentsApi, key: &str, idempotency_key: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/v1/charges", api.url()))
            .bearer_auth(key)
            .header("idempotency-key", idempotency_key)
            .json(&json!({"amount": 1250, "currency": "EUR", "source": "tok_abc"}))
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_outage_refuses_without_charging_and_ends() {
        let api = start().await.unwrap();
        api.start_outage(Reply::status(503));
        assert_eq!(charge(&api, PAYMENTS_API_KEY, "k1").await.status(), 503);
        assert_eq!(charge(&api, PAYMENTS_API_KEY, "k1").await.status(), 503);
        assert_eq!(api.charges_created(), 0);
        assert_eq!(api.outage_replies(), 2);
        assert!(api.charge_keys().is_empty());

        api.end_outage();
        let response = charge(&api, PAYMENTS_API_KEY, "k1").await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], "ch_1");
        assert_eq!(api.charge_keys(), ["k1"]);
        assert_eq!(api.outage_replies(), 2);
        api.shutdown().await;
    }

    #[tokio::test]
    async fn the_backup_has_its_own_key_ids_and_ledger() {
        let main = start().await.unwrap();
        let backup = start_backup().await.unwrap();
        assert_eq!(charge(&backup, PAYMENTS_API_KEY, "k1").await.status(), 401);
        let response = charge(&backup, PAYMENTS_BACKUP_API_KEY, "k1").await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], "chb_1");
        // The main gateway never heard of the key: it would charge again.
        assert_eq!(charge(&main, PAYMENTS_API_KEY, "k1").await.status(), 201);
        assert_eq!(main.idempotent_replays(), 0);
        assert_eq!(backup.charge_keys(), main.charge_keys());
        main.shutdown().await;
        backup.shutdown().await;
    }
}
