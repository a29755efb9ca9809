//! A chat API: `POST /messages` with `{channel, text}` answers `{ok, channel, ts}`.
//!
//! Messages are kept in order so a test or the demo can show what was
//! announced; `GET /messages?channel=` lists them over HTTP too. `ts` follows
//! the familiar `<unix seconds>.<sequence>` shape, unique per message.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};

use super::{Outage, invalid_field, json_object, unix_now};
use crate::sync::lock;
use crate::{MockUpstream, RecordedRequest, Reply, TestkitError};

/// One message posted to the chat API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// Channel it was posted to.
    pub channel: String,
    /// Message text.
    pub text: String,
    /// Message timestamp id returned to the poster.
    pub ts: String,
}

/// A running chat API.
#[derive(Debug)]
pub struct ChatApi {
    mock: MockUpstream,
    messages: Arc<Mutex<Vec<ChatMessage>>>,
    outage: Outage,
}

/// Starts the chat API on an ephemeral port of `127.0.0.1`.
pub async fn start() -> Result<ChatApi, TestkitError> {
    start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
}

/// Starts the chat API on `addr`.
pub async fn start_on(addr: SocketAddr) -> Result<ChatApi, TestkitError> {
    let mock = MockUpstream::start_on(addr).await?;
    // A std mutex suffices: it guards an in-memory list and is never held
    // across an await.
    let messages = Arc::new(Mutex::new(Vec::new()));
    let outage = Outage::default();
    let (post, down) = (Arc::clone(&messages), outage.clone());
    mock.route_fn("POST", "/messages", move |req| {
        down.intercept().unwrap_or_else(|| post_message(&post, req))
    });
    let (list, down) = (Arc::clone(&messages), outage.clone());
    mock.route_fn("GET", "/messages", move |req| {
        down.intercept()
            .unwrap_or_else(|| list_messages(&list, req))
    });
    Ok(ChatApi {
        mock,
        messages,
        outage,
    })
}

impl ChatApi {
    /// Base URL of the chat API.
    pub fn url(&self) -> String {
        self.mock.url()
    }

    /// The underlying mock: recorded requests, scripted faults, hold/release.
    pub fn mock(&self) -> &MockUpstream {
        &self.mock
    }

    /// Messages posted so far, oldest first.
    pub fn messages(&self) -> Vec<ChatMessage> {
        lock(&self.messages).clone()
    }

    /// Number of messages posted.
    pub fn message_count(&self) -> usize {
        lock(&self.messages).len()
    }

    /// Takes the chat API down: until [`ChatApi::end_outage`], every request
    /// is answered with `reply` (e.g. `Reply::status(503)` or
    /// [`Reply::reset`]) and nothing is posted. Replaces an outage in force.
    pub fn start_outage(&self, reply: Reply) {
        self.outage.start(reply);
    }

    /// Brings the chat API back.
    pub fn end_outage(&self) {
        self.outage.end();
    }

    /// Requests answered with an outage reply, over all outages.
    pub fn outage_replies(&self) -> usize {
        self.outage.refused()
    }

    /// Stops the chat API.
    pub async fn shutdown(self) {
        self.mock.shutdown().await;
    }
}

fn non_empty_str<'a>(body: &'a serde_json::Map<String, Value>, field: &str) -> Option<&'a str> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn post_message(messages: &Mutex<Vec<ChatMessage>>, req: &RecordedRequest) -> Reply {
    let body = match json_object(req.json.as_ref()) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let Some(channel) = non_empty_str(body, "channel") else {
        return invalid_field("channel", "channel must be a non-empty string");
    };
    let Some(text) = non_empty_str(body, "text") else {
        return invalid_field("text", "text must be a non-empty string");
    };
    let mut messages = lock(messages);
    let ts = format!("{}.{:06}", unix_now(), messages.len() + 1);
    messages.push(ChatMessage {
        channel: channel.to_owned(),
        text: text.to_owned(),
        ts: ts.clone(),
    });
    Reply::json(200, json!({ "ok": true, "channel": channel, "ts": ts }))
}

fn list_messages(messages: &Mutex<Vec<ChatMessage>>, req: &RecordedRequest) -> Reply {
    let channel = req.query_param("channel");
    let listed: Vec<ChatMessage> = lock(messages)
        .iter()
        .filter(|m| channel.is_none_or(|c| m.channel == c))
        .cloned()
        .collect();
    Reply::json(200, json!({ "ok": true, "messages": listed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_outage_resets_connections_until_it_ends() {
        let api = start().await.unwrap();
        let client = reqwest::Client::new();
        let post = || {
            client
                .post(format!("{}/messages", api.url()))
                .json(&json!({"channel": "orders", "text": "hi"}))
                .send()
        };
        api.start_outage(Reply::reset());
        assert!(post().await.is_err(), "a reset connection has no answer");
        assert_eq!(api.message_count(), 0);
        assert_eq!(api.outage_replies(), 1);
        api.end_outage();
        assert_eq!(post().await.unwrap().status(), 200);
        assert_eq!(api.message_count(), 1);
        api.shutdown().await;
    }
}
