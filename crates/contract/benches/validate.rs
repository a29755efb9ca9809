//! What holding a reply to its contract costs: validating a 10 KB JSON
//! reply against its operation's bundled schema, side by side with parsing
//! the same bytes (which every reply pays anyway), and loading the spec and
//! bundling the schema (paid once per build).
//!
//! `cargo bench -p patchbay-contract --bench validate` prints medians of
//! alternating rounds and their ratio; see docs/benchmarks.md.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use patchbay_contract::{Contract, Segment};
use serde_json::{Value, json};

const ROUNDS: usize = 15;
const PER_ROUND: usize = 400;

fn main() {
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../cli/tests/fixtures/contracts/specs/crm.yaml");
    let started = Instant::now();
    let contract = Contract::load(&spec).expect("the CRM spec loads");
    let load = started.elapsed();
    let operation = contract
        .match_operation("GET", &[Segment::Literal("contacts".into())])
        .expect("GET /contacts");
    let schema = operation
        .response_schema(200)
        .flatten()
        .expect("a 200 schema");
    let started = Instant::now();
    let bundled = schema.bundle();
    let validator = jsonschema::options()
        .should_validate_formats(false)
        .build(&bundled)
        .expect("the bundle compiles");
    let compile = started.elapsed();

    let reply = ten_kilobyte_reply();
    let bytes = serde_json::to_vec(&reply).unwrap();
    assert!(validator.is_valid(&reply), "the reply matches its schema");

    let mut parse = Vec::new();
    let mut validate = Vec::new();
    for _ in 0..ROUNDS {
        parse.push(per_iteration(|| {
            black_box(serde_json::from_slice::<Value>(black_box(&bytes)).unwrap());
        }));
        validate.push(per_iteration(|| {
            black_box(validator.iter_errors(black_box(&reply)).next().is_none());
        }));
    }
    let parse = median(&mut parse);
    let validate = median(&mut validate);
    println!(
        "reply: {} bytes, 30 contacts (GET /contacts 200 of the CRM spec)",
        bytes.len()
    );
    println!(
        "parse the reply (serde_json), median per reply:   {:>8.1} µs",
        micros(parse)
    );
    println!(
        "validate the reply (jsonschema), median per reply: {:>8.1} µs",
        micros(validate)
    );
    println!(
        "validate / parse: {:.2}",
        validate.as_secs_f64() / parse.as_secs_f64()
    );
    println!(
        "load the spec: {:.2} ms; bundle and compile the schema: {:.2} ms",
        millis(load),
        millis(compile)
    );
}

/// The mean time of one call of `work` over a round.
fn per_iteration(mut work: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..PER_ROUND {
        work();
    }
    started.elapsed() / PER_ROUND as u32
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A page of 30 contacts, about 10 KB of JSON.
fn ten_kilobyte_reply() -> Value {
    let contacts: Vec<Value> = (0..30)
        .map(|i| {
            json!({
                "id": format!("c-{i:05}"),
                "email": format!("person.{i}@example.com"),
                "name": format!("Person Number {i} of the Example Company"),
                "phone": "+44 20 7946 0000",
                "company": {"name": "Example Trading Company Limited", "domain": if i % 3 == 0 { Value::Null } else { json!("example.com") }},
                "tags": ["customer", "newsletter", "region-eu", "tier-gold"],
                "attributes": {"source": "import", "owner": "sales-team-north", "segment": "mid-market"}
            })
        })
        .collect();
    json!({ "contacts": contacts, "next": "cursor-0040" })
}
