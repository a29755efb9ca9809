//! Shop webhook sender, and all demo upstreams together.

use std::collections::HashSet;

use patchbay_testkit::demo::{DemoUpstreams, shop};
use patchbay_testkit::{MockUpstream, Reply, TestkitError};
use serde_json::json;

use crate::client;

#[tokio::test]
async fn sends_orders_with_bounded_concurrency() {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/hooks/shop/orders",
        Reply::json(202, json!({"run_id": "r"})),
    );
    let target = format!("{}/hooks/shop/orders", mock.url());
    let report = shop::send_orders(&target, 40, 4).await.unwrap();
    assert_eq!(
        (report.sent, report.accepted, report.rejected, report.errors),
        (40, 40, 0, 0)
    );
    assert_eq!(report.statuses.get(&202), Some(&40));
    assert!(mock.max_in_flight() <= 4);

    let requests = mock.requests();
    assert_eq!(requests.len(), 40);
    let mut ids = HashSet::new();
    for req in &requests {
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert!(
            req.header("webhook-timestamp")
                .unwrap()
                .parse::<u64>()
                .is_ok()
        );
        let body = req.json.as_ref().unwrap();
        let n: usize = body["order_id"].as_str().unwrap()["ord_".len()..]
            .parse()
            .unwrap();
        assert_eq!(*body, shop::order(n));
        assert_eq!(
            req.header("webhook-id"),
            Some(format!("msg_ord_{n}").as_str())
        );
        ids.insert(n);
    }
    assert_eq!(ids, (1..=40).collect());
}

#[tokio::test]
async fn concurrency_is_actually_used() {
    let mock = MockUpstream::start().await;
    mock.route("POST", "/in", Reply::status(204));
    mock.hold();
    let target = format!("{}/in", mock.url());
    let send = tokio::spawn(async move { shop::send_orders(&target, 12, 3).await });
    assert!(mock.wait_for_requests(3, crate::WAIT).await);
    assert_eq!(mock.in_flight(), 3);
    mock.release();
    let report = send.await.unwrap().unwrap();
    assert_eq!(report.accepted, 12);
    assert_eq!(mock.max_in_flight(), 3);
}

#[tokio::test]
async fn counts_rejections_and_errors() {
    let mock = MockUpstream::start().await;
    mock.route("POST", "/in", Reply::status(202));
    mock.script("POST", "/in", [Reply::status(401), Reply::status(500)]);
    let report = shop::send_orders_from(&format!("{}/in", mock.url()), 100, 5, 1)
        .await
        .unwrap();
    assert_eq!((report.sent, report.accepted, report.rejected), (5, 3, 2));
    assert_eq!(
        mock.requests()[0].json.as_ref().unwrap()["order_id"],
        "ord_100"
    );

    let closed = format!("http://{}/in", mock.addr());
    mock.shutdown().await;
    let report = shop::send_orders(&closed, 3, 2).await.unwrap();
    assert_eq!((report.sent, report.errors, report.accepted), (3, 3, 0));
}

#[tokio::test]
async fn refuses_unusable_targets() {
    for target in ["not a url", "ftp://127.0.0.1/x"] {
        let err = shop::send_orders(target, 1, 1).await.unwrap_err();
        assert!(matches!(err, TestkitError::InvalidUrl { .. }), "{err}");
    }
}

#[tokio::test]
async fn demo_upstreams_start_together() {
    let demo = DemoUpstreams::start().await.unwrap();
    let urls: HashSet<String> = [
        demo.payments.url(),
        demo.crm.url(),
        demo.erp.url(),
        demo.chat.url(),
    ]
    .into();
    assert_eq!(urls.len(), 4);
    let response = client()
        .post(format!("{}/messages", demo.chat.url()))
        .json(&json!({"channel": "orders", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let crm = client()
        .get(format!("{}/contacts", demo.crm.url()))
        .header("x-api-key", patchbay_testkit::demo::CRM_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(crm.status(), 200);
    demo.shutdown().await;
}
