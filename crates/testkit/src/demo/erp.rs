//! An ERP: customers upserted with `PUT /customers/{id}`, behind basic auth.
//!
//! - `PUT /customers/{id}` with a JSON object body stores it (with `id` set
//!   from the path, which is authoritative) and answers 201 the first time,
//!   with a `Location` header, and 200 on later updates; a body that is not a
//!   JSON object is a 400.
//! - `GET /customers/{id}` returns the customer or 404.
//! - `GET /customers` lists `{"customers": [...]}` ordered by id.
//!
//! Every route needs `Authorization: Basic` with [`ERP_USERNAME`] and
//! [`ERP_PASSWORD`]; anything else is a 401 with a `WWW-Authenticate` challenge.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{error, json_object};
use crate::sync::lock;
use crate::{MockUpstream, RecordedRequest, Reply, TestkitError};
use base64::Engine as _;

/// Basic-auth user name the ERP accepts.
pub const ERP_USERNAME: &str = "patchbay";

/// Basic-auth password the ERP accepts.
pub const ERP_PASSWORD: &str = "erp-demo-password";

/// The `Authorization` header value for [`ERP_USERNAME`] / [`ERP_PASSWORD`].
pub fn basic_auth_header() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ERP_USERNAME}:{ERP_PASSWORD}"))
    )
}

/// A running ERP.
#[derive(Debug)]
pub struct ErpApi {
    mock: MockUpstream,
    book: Arc<Mutex<Book>>,
}

#[derive(Debug, Default)]
struct Book {
    customers: BTreeMap<String, Value>,
    writes: usize,
}

/// Starts the ERP on an ephemeral port of `127.0.0.1`.
pub async fn start() -> Result<ErpApi, TestkitError> {
    start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
}

/// Starts the ERP on `addr`.
pub async fn start_on(addr: SocketAddr) -> Result<ErpApi, TestkitError> {
    let mock = MockUpstream::start_on(addr).await?;
    // A std mutex suffices: it guards an in-memory map and is never held
    // across an await.
    let book = Arc::new(Mutex::new(Book::default()));
    let expected = Arc::new(basic_auth_header());

    let (b, auth) = (Arc::clone(&book), Arc::clone(&expected));
    mock.route_fn("PUT", "/customers/{id}", move |req| {
        guarded(&auth, req, || put_customer(&b, req))
    });
    let (b, auth) = (Arc::clone(&book), Arc::clone(&expected));
    mock.route_fn("GET", "/customers/{id}", move |req| {
        guarded(&auth, req, || get_customer(&b, req))
    });
    let (b, auth) = (Arc::clone(&book), expected);
    mock.route_fn("GET", "/customers", move |req| {
        guarded(&auth, req, || {
            let customers: Vec<Value> = lock(&b).customers.values().cloned().collect();
            Reply::json(200, json!({ "customers": customers }))
        })
    });
    Ok(ErpApi { mock, book })
}

impl ErpApi {
    /// Base URL of the ERP.
    pub fn url(&self) -> String {
        self.mock.url()
    }

    /// The underlying mock: recorded requests, scripted faults, hold/release.
    pub fn mock(&self) -> &MockUpstream {
        &self.mock
    }

    /// Number of distinct customers stored.
    pub fn customer_count(&self) -> usize {
        lock(&self.book).customers.len()
    }

    /// Number of successful `PUT`s (creates and updates).
    pub fn writes(&self) -> usize {
        lock(&self.book).writes
    }

    /// The stored customer with `id`.
    pub fn customer(&self, id: &str) -> Option<Value> {
        lock(&self.book).customers.get(id).cloned()
    }

    /// All stored customers ordered by id.
    pub fn customers(&self) -> Vec<Value> {
        lock(&self.book).customers.values().cloned().collect()
    }

    /// Stops the ERP.
    pub async fn shutdown(self) {
        self.mock.shutdown().await;
    }
}

fn guarded(expected: &str, req: &RecordedRequest, then: impl FnOnce() -> Reply) -> Reply {
    let ok = req
        .header("authorization")
        .and_then(|value| value.split_once(' '))
        .is_some_and(|(scheme, credentials)| {
            scheme.eq_ignore_ascii_case("basic")
                && expected
                    .split_once(' ')
                    .is_some_and(|(_, want)| want == credentials.trim())
        });
    if ok {
        then()
    } else {
        error(401, "unauthorized", "basic authentication required")
            .with_header("www-authenticate", "Basic realm=\"erp\"")
    }
}

fn put_customer(book: &Mutex<Book>, req: &RecordedRequest) -> Reply {
    let id = req.param("id").unwrap_or_default().to_owned();
    let mut customer = match json_object(req.json.as_ref()) {
        Ok(body) => body.clone(),
        Err(reply) => return reply,
    };
    customer.insert("id".to_owned(), Value::String(id.clone()));
    let customer = Value::Object(customer);
    let mut book = lock(book);
    book.writes += 1;
    match book.customers.insert(id.clone(), customer.clone()) {
        None => Reply::json(201, customer).with_header("location", &format!("/customers/{id}")),
        Some(_) => Reply::json(200, customer),
    }
}

fn get_customer(book: &Mutex<Book>, req: &RecordedRequest) -> Reply {
    let id = req.param("id").unwrap_or_default();
    lock(book).customers.get(id).map_or_else(
        || error(404, "not_found", "no such customer"),
        |customer| Reply::json(200, customer.clone()),
    )
}
