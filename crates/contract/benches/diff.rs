//! What diffing two versions of a large description costs. GitHub's api.github.com
//! description (about 12 MB of JSON, 1,200 operations, 900 shared component schemas
//! nested several levels deep) is the size to beat; this writes synthetic ones of that
//! shape to a temporary directory, each with a second version carrying a few hundred
//! changes to widely shared schemas, then times loading and diffing them: one whose
//! schemas refer mostly down the list (a few cycles, like GitHub's), and one where
//! every schema reaches every other (the worst case: each operation reaches every
//! change, through cycles).
//!
//! `cargo bench -p patchbay-contract --bench diff` prints the sizes and times. With
//! `PATCHBAY_DIFF_OLD` and `PATCHBAY_DIFF_NEW` set to two files, it diffs those instead
//! (`scripts/fetch-api-descriptions` fetches two versions each of GitHub's and
//! Blockfrost's descriptions into `~/.cache/patchbay/api-descriptions`);
//! `PATCHBAY_DIFF_DUMP=FILE` writes the changes from old to new there, one JSON object
//! a line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use patchbay_contract::{Contract, diff};
use serde_json::{Map, Value, json};

const SCHEMAS: usize = 900;
const PATHS: usize = 600;

fn main() {
    if let (Ok(old), Ok(new)) = (
        std::env::var("PATCHBAY_DIFF_OLD"),
        std::env::var("PATCHBAY_DIFF_NEW"),
    ) {
        return given(Path::new(&old), Path::new(&new));
    }
    let dir = std::env::temp_dir().join(format!("patchbay-diff-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    for dense in [false, true] {
        println!(
            "{}",
            if dense {
                "every schema reaching every other:"
            } else {
                "schemas referring mostly down the list:"
            }
        );
        synthetic(&dir, dense);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn synthetic(dir: &Path, dense: bool) {
    let old = write(dir, "old.json", &description(false, dense));
    let copy = write(dir, "copy.json", &description(false, dense));
    let new = write(dir, "new.json", &description(true, dense));
    let size = std::fs::metadata(&old).map(|m| m.len()).unwrap_or(0);

    let started = Instant::now();
    let old = Contract::load(&old).expect("old loads");
    let load = started.elapsed();
    let copy = Contract::load(&copy).expect("copy loads");
    let new = Contract::load(&new).expect("new loads");
    println!(
        "  description: {:.1} MB, {} operations; load: {:.0} ms",
        size as f64 / 1e6,
        old.operations().len(),
        load.as_secs_f64() * 1e3
    );

    let started = Instant::now();
    let same = diff(&old, &copy);
    println!(
        "  diff against an identical copy: {:.0} ms, {} changes",
        started.elapsed().as_secs_f64() * 1e3,
        same.len()
    );
    let started = Instant::now();
    let changes = diff(&old, &new);
    let took = started.elapsed();
    let breaking = changes
        .iter()
        .filter(|c| c.severity == patchbay_contract::Severity::Breaking)
        .count();
    let stopped = changes
        .iter()
        .filter(|c| c.rule == "comparison-stopped")
        .count();
    println!(
        "  diff against a changed version: {:.0} ms, {} changes ({breaking} breaking; {stopped} operations stopped)",
        took.as_secs_f64() * 1e3,
        changes.len()
    );
}

/// Diffs two given files, both ways, and against itself.
fn given(old: &Path, new: &Path) {
    let started = Instant::now();
    let old = Contract::load(old).expect("old loads");
    let new = Contract::load(new).expect("new loads");
    println!(
        "load both: {:.0} ms; {} and {} operations",
        started.elapsed().as_secs_f64() * 1e3,
        old.operations().len(),
        new.operations().len()
    );
    for (name, a, b) in [
        ("old to new", &old, &new),
        ("new to old", &new, &old),
        ("old to old", &old, &old),
    ] {
        let started = Instant::now();
        let changes = diff(a, b);
        if let Ok(file) = std::env::var("PATCHBAY_DIFF_DUMP")
            && name == "old to new"
        {
            let lines: Vec<String> = changes
                .iter()
                .filter_map(|c| serde_json::to_string(c).ok())
                .collect();
            std::fs::write(file, lines.join("\n")).expect("writes the dump");
        }
        let took = started.elapsed();
        let count = |severity| changes.iter().filter(|c| c.severity == severity).count();
        let stopped = changes
            .iter()
            .filter(|c| c.rule == "comparison-stopped")
            .count();
        println!(
            "{name}: {:.0} ms, {} changes ({} breaking, {} warnings, {} info; {stopped} operations stopped)",
            took.as_secs_f64() * 1e3,
            changes.len(),
            count(patchbay_contract::Severity::Breaking),
            count(patchbay_contract::Severity::Warning),
            count(patchbay_contract::Severity::Info),
        );
    }
}

fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(value).expect("serialises")).expect("writes");
    path
}

/// Prose of the length GitHub's descriptions have.
fn prose(what: &str, i: usize) -> String {
    format!(
        "The {what} number {i}. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat."
    )
}

fn reference(i: usize) -> Value {
    json!({ "$ref": format!("#/components/schemas/s{i}") })
}

/// A component schema: 24 properties of every kind, refs to schemas further down the
/// list (and, every 50th, back up, so that there are cycles); when `dense`, anywhere.
fn schema(i: usize, changed: bool, dense: bool) -> Value {
    let mut properties = Map::new();
    for p in 0..24 {
        let name = format!("field_{p}");
        let mut target = (i + p * 7 + 1) % SCHEMAS;
        if !dense && target < i && !i.is_multiple_of(50) {
            target = SCHEMAS;
        }
        let value = match p % 8 {
            0 => {
                json!({"type": "string", "format": "date-time", "description": prose("timestamp", p), "example": "2011-01-26T19:01:12Z"})
            }
            1 => json!({"type": "integer", "description": prose("count", p), "example": 42}),
            2 => {
                json!({"type": "string", "enum": ["open", "closed", "all"], "description": prose("state", p)})
            }
            3..=5 if target == SCHEMAS => json!({"type": "string", "nullable": true}),
            3 | 4 => {
                let mut r = reference(target);
                if p % 2 == 0 {
                    r = json!({"allOf": [r], "nullable": true, "description": prose("link", p)});
                }
                r
            }
            5 => {
                let items = if dense {
                    (target + 3) % SCHEMAS
                } else {
                    (target + 3).min(SCHEMAS - 1)
                };
                json!({"type": "array", "items": reference(items), "description": prose("list", p)})
            }
            6 => {
                json!({"type": "object", "properties": {"url": {"type": "string", "format": "uri"}, "total": {"type": "integer"}}, "additionalProperties": {"type": "string"}})
            }
            _ => json!({"type": "boolean", "description": prose("flag", p), "example": true}),
        };
        properties.insert(name, value);
    }
    let mut required: Vec<String> = (0..24).step_by(3).map(|p| format!("field_{p}")).collect();
    if changed && i.is_multiple_of(9) {
        // A removed property, a type change, a new enum value, a property that
        // became optional: about a hundred schemas, each reached by many operations.
        properties.remove("field_7");
        properties.insert("field_1".into(), json!({"type": "string"}));
        properties.insert(
            "field_2".into(),
            json!({"type": "string", "enum": ["open", "closed", "all", "draft"]}),
        );
        required.retain(|r| r != "field_0");
    }
    let mut out = json!({
        "title": format!("Schema {i}"),
        "description": prose("schema", i),
        "type": "object",
        "properties": properties,
        "required": required,
    });
    if i % 10 == 5 && (dense || i + 11 < SCHEMAS) {
        out = json!({"allOf": [reference((i + 11) % SCHEMAS), out]});
    }
    if i % 25 == 7 && (dense || i + 17 < SCHEMAS) {
        out = json!({"oneOf": [reference((i + 13) % SCHEMAS), reference((i + 17) % SCHEMAS)]});
    }
    out
}

fn description(changed: bool, dense: bool) -> Value {
    let mut schemas = Map::new();
    for i in 0..SCHEMAS {
        schemas.insert(format!("s{i}"), schema(i, changed, dense));
    }
    let mut paths = Map::new();
    for p in 0..PATHS {
        if changed && p == 17 {
            continue;
        }
        let param = if changed && p % 40 == 0 { "name" } else { "id" };
        let item_schema = reference((p * 13) % SCHEMAS);
        let list = json!({
            "operationId": format!("list{p}"),
            "summary": prose("list operation", p),
            "description": prose("list operation", p),
            "parameters": [
                {"$ref": "#/components/parameters/perPage"},
                {"name": "owner", "in": "path", "required": true, "schema": {"type": "string"}},
                {"name": "state", "in": "query", "required": changed && p % 30 == 0, "schema": {"type": "string", "enum": ["open", "closed"]}}
            ],
            "responses": {
                "200": {
                    "description": "OK",
                    "headers": {"Link": {"schema": {"type": "string"}}},
                    "content": {"application/json": {
                        "schema": {"type": "object", "properties": {
                            "total_count": {"type": "integer"},
                            "items": {"type": "array", "items": item_schema}
                        }},
                        "examples": {"default": {"value": {"total_count": 1, "items": [{"id": 1, "node_id": "MDQ6VXNlcjE=", "url": "https://api.github.com/users/octocat"}]}}}
                    }}
                },
                "404": {"$ref": "#/components/responses/notFound"}
            }
        });
        let create = json!({
            "operationId": format!("create{p}"),
            "summary": prose("create operation", p),
            "parameters": [{"name": "owner", "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": reference((p * 13 + 1) % SCHEMAS)}}},
            "responses": {
                "201": {"description": "Created", "content": {"application/json": {"schema": reference((p * 13 + 2) % SCHEMAS)}}},
                "422": {"$ref": "#/components/responses/notFound"}
            }
        });
        paths.insert(
            format!("/things{p}/{{{param}}}/items"),
            json!({"get": list, "post": create}),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Synthetic", "version": "1"},
        "servers": [{"url": "https://api.example.com"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {"perPage": {"name": "per_page", "in": "query", "schema": {"type": "integer", "maximum": 100}}},
            "responses": {"notFound": {"description": "Not found", "content": {"application/json": {"schema": {"type": "object", "properties": {"message": {"type": "string"}}}}}}}
        }
    })
}
