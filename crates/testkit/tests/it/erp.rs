//! Demo ERP: basic auth, JSON bodies, upsert semantics.

use patchbay_testkit::demo::{ERP_PASSWORD, ERP_USERNAME, erp};
use serde_json::{Value, json};

use crate::client;

fn put(url: &str, id: &str) -> reqwest::RequestBuilder {
    client()
        .put(format!("{url}/customers/{id}"))
        .basic_auth(ERP_USERNAME, Some(ERP_PASSWORD))
}

#[tokio::test]
async fn put_creates_then_updates() {
    let api = erp::start().await.unwrap();
    let url = api.url();
    let response = put(&url, "ct_001")
        .json(&json!({"name": "Ada Lovelace", "email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/customers/ct_001");
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created,
        json!({"id": "ct_001", "name": "Ada Lovelace", "email": "ada@example.com"})
    );

    let response = put(&url, "ct_001")
        .json(&json!({"id": "other", "name": "Ada King"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated, json!({"id": "ct_001", "name": "Ada King"}));

    assert_eq!(api.customer_count(), 1);
    assert_eq!(api.writes(), 2);
    assert_eq!(api.customer("ct_001"), Some(updated.clone()));

    let fetched = client()
        .get(format!("{url}/customers/ct_001"))
        .basic_auth(ERP_USERNAME, Some(ERP_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.json::<Value>().await.unwrap(), updated);

    put(&url, "ct_000")
        .json(&json!({"name": "Zero"}))
        .send()
        .await
        .unwrap();
    let list: Value = client()
        .get(format!("{url}/customers"))
        .basic_auth(ERP_USERNAME, Some(ERP_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ct_000", "ct_001"]);
    assert_eq!(api.customers().len(), 2);
}

#[tokio::test]
async fn unknown_customer_is_404() {
    let api = erp::start().await.unwrap();
    let response = client()
        .get(format!("{}/customers/nobody", api.url()))
        .basic_auth(ERP_USERNAME, Some(ERP_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "not_found"
    );
}

#[tokio::test]
async fn refuses_bad_credentials_on_every_route() {
    let api = erp::start().await.unwrap();
    let url = api.url();
    let http = client();
    let attempts = [
        http.put(format!("{url}/customers/1")).json(&json!({})),
        http.put(format!("{url}/customers/1"))
            .basic_auth(ERP_USERNAME, Some("wrong"))
            .json(&json!({})),
        http.put(format!("{url}/customers/1"))
            .bearer_auth(ERP_PASSWORD)
            .json(&json!({})),
        http.get(format!("{url}/customers/1")),
        http.get(format!("{url}/customers")),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"erp\""
        );
    }
    assert_eq!(api.writes(), 0);
    // The helper produces the header the server expects.
    let response = http
        .put(format!("{url}/customers/1"))
        .header("authorization", erp::basic_auth_header())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn non_json_bodies_are_400() {
    let api = erp::start().await.unwrap();
    for body in ["not json", "", "[1,2]", "\"text\""] {
        let response = put(&api.url(), "ct_001").body(body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "invalid_json"
        );
    }
    assert_eq!(api.customer_count(), 0);
}
