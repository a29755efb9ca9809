//! Demo chat API: validation and message inspection.

use patchbay_testkit::demo::chat;
use serde_json::{Value, json};

use crate::client;

#[tokio::test]
async fn posts_and_keeps_messages() {
    let api = chat::start().await.unwrap();
    let mut stamps = Vec::new();
    for (channel, text) in [("orders", "Order ord_1 charged"), ("ops", "hello")] {
        let response = client()
            .post(format!("{}/messages", api.url()))
            .json(&json!({"channel": channel, "text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["ok"], true);
        assert_eq!(body["channel"], channel);
        stamps.push(body["ts"].as_str().unwrap().to_owned());
    }
    assert_ne!(stamps[0], stamps[1]);
    let messages = api.messages();
    assert_eq!(api.message_count(), 2);
    assert_eq!(messages[0].channel, "orders");
    assert_eq!(messages[0].text, "Order ord_1 charged");
    assert_eq!(messages[0].ts, stamps[0]);

    let listed: Value = client()
        .get(format!("{}/messages?channel=ops", api.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["messages"].as_array().unwrap().len(), 1);
    assert_eq!(listed["messages"][0]["text"], "hello");
}

#[tokio::test]
async fn missing_fields_are_422_and_bad_json_400() {
    let api = chat::start().await.unwrap();
    for (body, field) in [
        (json!({"text": "hi"}), "channel"),
        (json!({"channel": "", "text": "hi"}), "channel"),
        (json!({"channel": "ops"}), "text"),
        (json!({"channel": "ops", "text": 5}), "text"),
    ] {
        let response = client()
            .post(format!("{}/messages", api.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["field"], field);
    }
    let response = client()
        .post(format!("{}/messages", api.url()))
        .body("channel=ops")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(api.message_count(), 0);
}
