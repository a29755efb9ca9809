//! Demo CRM: API key, paging, filtering.

use patchbay_testkit::demo::{CRM_API_KEY, crm};
use serde_json::Value;

use crate::client;

async fn get(url: &str, key: Option<&str>, query: &str) -> (u16, Value) {
    let mut request = client().get(format!("{url}/contacts{query}"));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    (status, response.json().await.unwrap())
}

/// Follows `next_page_token` from the first page; returns ids and page count.
async fn walk(url: &str, query: &str) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut q = format!("?x=1{query}");
        if let Some(token) = &token {
            q.push_str(&format!("&page_token={token}"));
        }
        let (status, body) = get(url, Some(CRM_API_KEY), &q).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for contact in body["contacts"].as_array().unwrap() {
            ids.push(contact["id"].as_str().unwrap().to_owned());
        }
        match &body["next_page_token"] {
            Value::Null => break,
            Value::String(next) => token = Some(next.clone()),
            other => panic!("bad next_page_token {other}"),
        }
        assert!(pages < 100, "paging does not end");
    }
    (ids, pages)
}

#[tokio::test]
async fn paging_walks_all_25_contacts() {
    let api = crm::start().await.unwrap();
    let (ids, pages) = walk(&api.url(), "").await;
    assert_eq!(pages, 3);
    let want: Vec<String> = (1..=25).map(|i| format!("ct_{i:03}")).collect();
    assert_eq!(ids, want);
    assert_eq!(api.pages_served(), 3);

    let (ids, pages) = walk(&api.url(), "&limit=7").await;
    assert_eq!((ids.len(), pages), (25, 4));
    let (ids, pages) = walk(&api.url(), "&limit=1000").await;
    assert_eq!((ids.len(), pages), (25, 1));
}

#[tokio::test]
async fn contacts_have_the_documented_shape() {
    let api = crm::start().await.unwrap();
    let (_, body) = get(&api.url(), Some(CRM_API_KEY), "").await;
    let contacts = body["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 10);
    let first = &contacts[0];
    assert_eq!(first["id"], "ct_001");
    assert_eq!(first["first_name"], "Ada");
    assert_eq!(first["last_name"], "Lovelace");
    assert_eq!(first["email"], "ada.lovelace@example.com");
    assert!(first["updated_at"].as_str().unwrap().ends_with('Z'));
    assert!(body["next_page_token"].is_string());
    // Deterministic: a second server serves the same data.
    let other = crm::start().await.unwrap();
    assert_eq!(get(&other.url(), Some(CRM_API_KEY), "").await.1, body);
    assert_eq!(crm::contacts()[..10], contacts[..]);
}

#[tokio::test]
async fn refuses_missing_or_wrong_key() {
    let api = crm::start().await.unwrap();
    assert_eq!(get(&api.url(), None, "").await.0, 401);
    let (status, body) = get(&api.url(), Some("nope"), "").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(api.pages_served(), 0);
}

#[tokio::test]
async fn bad_parameters_are_400() {
    let api = crm::start().await.unwrap();
    for (query, code) in [
        ("?page_token=garbage", "invalid_page_token"),
        ("?page_token=pt_0", "invalid_page_token"),
        ("?page_token=pt_ff", "invalid_page_token"),
        ("?limit=0", "invalid_limit"),
        ("?limit=ten", "invalid_limit"),
        ("?updated_since=yesterday", "invalid_updated_since"),
    ] {
        let (status, body) = get(&api.url(), Some(CRM_API_KEY), query).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"], code, "{query}");
    }
}

#[tokio::test]
async fn updated_since_returns_only_later_contacts() {
    let api = crm::start().await.unwrap();
    let all = crm::contacts();
    let mut stamps: Vec<&str> = all
        .iter()
        .map(|c| c["updated_at"].as_str().unwrap())
        .collect();
    stamps.sort_unstable();
    let cursor = stamps[19];
    let (ids, _) = walk(&api.url(), &format!("&limit=2&updated_since={cursor}")).await;
    assert_eq!(ids.len(), 5);
    for id in &ids {
        let contact = all.iter().find(|c| c["id"] == id.as_str()).unwrap();
        assert!(contact["updated_at"].as_str().unwrap() > cursor);
    }
    let (ids, _) = walk(&api.url(), "&updated_since=1970-01-01T00:00:00Z").await;
    assert_eq!(ids.len(), 25);
    let (ids, pages) = walk(&api.url(), &format!("&updated_since={}", stamps[24])).await;
    assert_eq!((ids.len(), pages), (0, 1));
}
