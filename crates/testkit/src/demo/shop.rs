//! A shop that sends order webhooks: the traffic source for the demo and benchmarks.
//!
//! [`order`] builds order event `n` deterministically (same `n`, same event),
//! so runs are reproducible and totals can be asserted. [`send_orders`] POSTs
//! events to a target with bounded concurrency and reports what the target
//! answered. Each delivery carries `webhook-id: msg_ord_<n>` and a
//! `webhook-timestamp`: sending the same order number twice is a redelivery of
//! the same event, exactly as a real shop retrying would produce, so a
//! receiver's dedupe sees it as such. Use [`send_orders_from`] with a fresh
//! starting number for new events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::unix_now;
use crate::TestkitError;

/// Per-request timeout, so a stuck target cannot hang a sender.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const PRODUCTS: [(&str, &str, u64); 8] = [
    ("SKU-MUG-01", "Enamel mug", 1_450),
    ("SKU-TEE-02", "Organic T-shirt", 2_900),
    ("SKU-CAP-03", "Canvas cap", 2_200),
    ("SKU-BAG-04", "Tote bag", 1_800),
    ("SKU-NTB-05", "Dot-grid notebook", 1_250),
    ("SKU-PEN-06", "Fountain pen", 4_500),
    ("SKU-STK-07", "Sticker pack", 500),
    ("SKU-HOD-08", "Zip hoodie", 6_900),
];

const CUSTOMERS: [(&str, &str); 10] = [
    ("Mia", "Schneider"),
    ("Lukas", "Fischer"),
    ("Emma", "Weber"),
    ("Noah", "Meyer"),
    ("Sofia", "Rossi"),
    ("Luca", "Bianchi"),
    ("Chloé", "Martin"),
    ("Hugo", "Bernard"),
    ("Lena", "Jansen"),
    ("Daan", "de Vries"),
];

/// What happened to a batch of deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShopReport {
    /// Deliveries attempted.
    pub sent: usize,
    /// Answered with a 2xx status.
    pub accepted: usize,
    /// Answered with any other status.
    pub rejected: usize,
    /// Not answered: connection failure, timeout.
    pub errors: usize,
    /// Count of answers per status code.
    pub statuses: BTreeMap<u16, usize>,
    /// Wall time for the whole batch.
    pub elapsed: Duration,
}

impl ShopReport {
    fn merge(&mut self, other: ShopReport) {
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.errors += other.errors;
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
    }
}

/// Mixes `n` into well-spread bits (SplitMix64), for deterministic variety.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Builds order event number `n`; the same `n` always gives the same event.
pub fn order(n: usize) -> Value {
    let seed = mix(n as u64);
    let customer_index = (seed % CUSTOMERS.len() as u64) as usize;
    let (first, last) = CUSTOMERS[customer_index];
    let item_count = 1 + ((seed >> 8) % 3) as usize;
    let mut total_cents = 0;
    let items: Vec<Value> = (0..item_count)
        .map(|i| {
            let pick = (seed >> (16 + 8 * i)) as usize;
            let (sku, name, unit_price_cents) = PRODUCTS[(pick + i * 3) % PRODUCTS.len()];
            let quantity = 1 + ((pick >> 4) % 3) as u64;
            total_cents += unit_price_cents * quantity;
            json!({
                "sku": sku,
                "name": name,
                "quantity": quantity,
                "unit_price_cents": unit_price_cents,
            })
        })
        .collect();
    let email_local = format!("{first}.{last}")
        .to_lowercase()
        .replace(' ', "")
        .replace('é', "e");
    json!({
        "order_id": format!("ord_{n}"),
        "total_cents": total_cents,
        "currency": "EUR",
        "payment_token": format!("tok_{:016x}", mix(seed)),
        "customer": {
            "id": format!("cus_{:03}", customer_index + 1),
            "email": format!("{email_local}@example.com"),
            "name": format!("{first} {last}"),
        },
        "items": items,
    })
}

/// Sends orders `1..=count` to `target_url` with at most `concurrency`
/// requests in flight (0 is treated as 1).
pub async fn send_orders(
    target_url: &str,
    count: usize,
    concurrency: usize,
) -> Result<ShopReport, TestkitError> {
    send_orders_from(target_url, 1, count, concurrency).await
}

/// Sends orders `first..first + count` to `target_url` with at most
/// `concurrency` requests in flight (0 is treated as 1).
pub async fn send_orders_from(
    target_url: &str,
    first: usize,
    count: usize,
    concurrency: usize,
) -> Result<ShopReport, TestkitError> {
    let target = Url::parse(target_url).map_err(|e| TestkitError::InvalidUrl {
        url: target_url.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err(TestkitError::InvalidUrl {
            url: target_url.to_owned(),
            reason: "scheme must be http or https".to_owned(),
        });
    }
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(TestkitError::HttpClient)?;

    let started = Instant::now();
    // Workers pull the next order number from a shared counter, which bounds
    // concurrency without spawning one task per order.
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.clamp(1, count.max(1)) {
        let (client, target, next) = (client.clone(), target.clone(), Arc::clone(&next));
        workers.spawn(async move {
            let mut report = ShopReport::default();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    break report;
                }
                deliver(&client, &target, first + i, &mut report).await;
            }
        });
    }
    let mut report = ShopReport::default();
    while let Some(done) = workers.join_next().await {
        // A worker only ends by finishing its loop; a join error would mean the
        // runtime is shutting down, and its partial count is lost with it.
        if let Ok(part) = done {
            report.merge(part);
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn deliver(client: &reqwest::Client, target: &Url, n: usize, report: &mut ShopReport) {
    report.sent += 1;
    let sent = client
        .post(target.clone())
        .header("webhook-id", format!("msg_ord_{n}"))
        .header("webhook-timestamp", unix_now().to_string())
        .json(&order(n))
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status();
            *report.statuses.entry(status.as_u16()).or_default() += 1;
            if status.is_success() {
                report.accepted += 1;
            } else {
                report.rejected += 1;
            }
        }
        Err(_) => report.errors += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_deterministic_and_consistent() {
        assert_eq!(order(7), order(7));
        assert_ne!(order(7), order(8));
        for n in 1..200 {
            let o = order(n);
            assert_eq!(o["order_id"], format!("ord_{n}"));
            let items = o["items"].as_array().unwrap();
            assert!((1..=3).contains(&items.len()));
            let sum: u64 = items
                .iter()
                .map(|i| i["quantity"].as_u64().unwrap() * i["unit_price_cents"].as_u64().unwrap())
                .sum();
            assert_eq!(o["total_cents"].as_u64().unwrap(), sum);
            assert!(sum > 0);
            let email = o["customer"]["email"].as_str().unwrap();
            assert!(email.is_ascii() && !email.contains(' '), "{email}");
            assert!(o["payment_token"].as_str().unwrap().starts_with("tok_"));
        }
    }
}
