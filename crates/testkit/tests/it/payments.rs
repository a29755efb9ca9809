//! Demo payment gateway: auth, validation, idempotency.

use patchbay_testkit::Reply;
use patchbay_testkit::demo::{PAYMENTS_API_KEY, payments};
use serde_json::{Value, json};

use crate::client;

fn charge_body() -> Value {
    json!({"amount": 1250, "currency": "EUR", "source": "tok_abc"})
}

async fn post(
    url: &str,
    auth: Option<&str>,
    key: Option<&str>,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = client().post(format!("{url}/v1/charges")).json(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    (status, headers, response.json().await.unwrap())
}

fn bearer() -> String {
    format!("Bearer {PAYMENTS_API_KEY}")
}

#[tokio::test]
async fn creates_a_charge() {
    let api = payments::start().await.unwrap();
    let (status, _, body) = post(&api.url(), Some(&bearer()), None, &charge_body()).await;
    assert_eq!(status, 201);
    assert_eq!(body["id"], "ch_1");
    assert_eq!(body["amount"], 1250);
    assert_eq!(body["currency"], "EUR");
    assert_eq!(body["status"], "succeeded");
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(api.charges_created(), 1);

    let (status, _, second) = post(&api.url(), Some(&bearer()), None, &charge_body()).await;
    assert_eq!(status, 201);
    assert_eq!(second["id"], "ch_2");
    assert_eq!(api.charges_created(), 2);

    let fetched: Value = client()
        .get(format!("{}/v1/charges/ch_1", api.url()))
        .bearer_auth(PAYMENTS_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, body);
    let missing = client()
        .get(format!("{}/v1/charges/ch_99", api.url()))
        .bearer_auth(PAYMENTS_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn refuses_missing_or_wrong_keys() {
    let api = payments::start().await.unwrap();
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(PAYMENTS_API_KEY),
        Some("Basic abc"),
    ] {
        let (status, headers, body) = post(&api.url(), auth, None, &charge_body()).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(body["error"], "unauthorized");
        assert!(headers.contains_key("www-authenticate"));
    }
    // Scheme names are case-insensitive.
    let lower = format!("bearer {PAYMENTS_API_KEY}");
    assert_eq!(
        post(&api.url(), Some(&lower), None, &charge_body()).await.0,
        201
    );
    assert_eq!(api.charges_created(), 1);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let api = payments::start().await.unwrap();
    let cases = [
        (json!({"currency": "EUR", "source": "tok"}), "amount"),
        (
            json!({"amount": 0, "currency": "EUR", "source": "tok"}),
            "amount",
        ),
        (
            json!({"amount": -5, "currency": "EUR", "source": "tok"}),
            "amount",
        ),
        (
            json!({"amount": 10.5, "currency": "EUR", "source": "tok"}),
            "amount",
        ),
        (
            json!({"amount": "10", "currency": "EUR", "source": "tok"}),
            "amount",
        ),
        (
            json!({"amount": 10, "currency": "EURO", "source": "tok"}),
            "currency",
        ),
        (
            json!({"amount": 10, "currency": "E1R", "source": "tok"}),
            "currency",
        ),
        (json!({"amount": 10, "source": "tok"}), "currency"),
        (json!({"amount": 10, "currency": "EUR"}), "source"),
        (
            json!({"amount": 10, "currency": "EUR", "source": " "}),
            "source",
        ),
    ];
    for (body, field) in cases {
        let (status, _, reply) = post(&api.url(), Some(&bearer()), None, &body).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(reply["error"], "invalid_field");
        assert_eq!(reply["field"], field, "{body}");
    }
    let response = client()
        .post(format!("{}/v1/charges", api.url()))
        .bearer_auth(PAYMENTS_API_KEY)
        .body("amount=5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(api.charges_created(), 0);
}

#[tokio::test]
async fn the_same_idempotency_key_creates_one_charge() {
    let api = payments::start().await.unwrap();
    let url = api.url();
    let (status, headers, first) = post(&url, Some(&bearer()), Some("ord_1"), &charge_body()).await;
    assert_eq!(status, 201);
    assert!(!headers.contains_key("idempotent-replayed"));
    for _ in 0..3 {
        let (status, headers, again) =
            post(&url, Some(&bearer()), Some("ord_1"), &charge_body()).await;
        assert_eq!(status, 201);
        assert_eq!(headers["idempotent-replayed"], "true");
        assert_eq!(again, first);
    }
    assert_eq!(api.charges_created(), 1);
    assert_eq!(api.idempotent_replays(), 3);

    // Another key is another charge.
    let (_, _, other) = post(&url, Some(&bearer()), Some("ord_2"), &charge_body()).await;
    assert_ne!(other["id"], first["id"]);
    assert_eq!(api.charges_created(), 2);

    // Reusing a key with different parameters is refused and charges nothing.
    let changed = json!({"amount": 999, "currency": "EUR", "source": "tok_abc"});
    let (status, _, body) = post(&url, Some(&bearer()), Some("ord_1"), &changed).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"], "idempotency_key_reused");
    assert_eq!(api.charges_created(), 2);
    assert_eq!(api.mock().requests_to("POST", "/v1/charges").len(), 6);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_charge_once() {
    let api = payments::start().await.unwrap();
    let url = api.url();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                post(&url, Some(&bearer()), Some("ord_race"), &charge_body()).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for call in calls {
        let (status, _, body) = call.await.unwrap();
        assert_eq!(status, 201);
        ids.push(body["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids, [json!("ch_1")]);
    assert_eq!(api.charges_created(), 1);
}

#[tokio::test]
async fn a_charge_made_while_held_is_replayed_after_a_lost_reply() {
    // The crash scenario: the gateway acts, the caller never hears back and
    // retries with the same key.
    let api = payments::start().await.unwrap();
    api.mock().hold();
    let url = api.url();
    let lost = tokio::spawn({
        let url = url.clone();
        async move { post(&url, Some(&bearer()), Some("ord_9"), &charge_body()).await }
    });
    assert!(api.mock().wait_for_requests(1, crate::WAIT).await);
    assert!(crate::eventually(|| api.charges_created() == 1).await);
    assert_eq!(api.mock().in_flight(), 1);
    lost.abort();
    api.mock().release();
    let (status, headers, body) = post(&url, Some(&bearer()), Some("ord_9"), &charge_body()).await;
    assert_eq!(status, 201);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(body["id"], "ch_1");
    assert_eq!(api.charges_created(), 1);
}

#[tokio::test]
async fn scripted_faults_run_before_the_gateway() {
    let api = payments::start().await.unwrap();
    api.mock()
        .script("POST", "/v1/charges", [Reply::status(503)]);
    let response = client()
        .post(format!("{}/v1/charges", api.url()))
        .json(&charge_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        post(&api.url(), Some(&bearer()), None, &charge_body())
            .await
            .0,
        201
    );
    assert_eq!(api.charges_created(), 1);
}
