//! Connection reuse: sequential calls share one pooled keep-alive connection.

use std::sync::atomic::Ordering;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{build, counting_proxy, request};

#[tokio::test]
async fn sequential_calls_reuse_one_connection() {
    let mock = MockUpstream::start().await;
    mock.route(
        "GET",
        "/contacts/{id}",
        Reply::json(200, json!({"ok": true})),
    );
    // The proxy sees every TCP connection the connector opens.
    let (proxy, connections) = counting_proxy(mock.addr()).await;
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: http://{proxy}\n"
    ));

    for i in 0..50 {
        let response = connector
            .call(&request("GET", &format!("/contacts/{i}")))
            .await
            .unwrap();
        assert_eq!(response.body, json!({"ok": true}));
    }

    assert_eq!(mock.request_count(), 50);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}
