//! The other lists and shows for people: connectors' health, the
//! configuration, secrets, the audit log, contract drift and webhook
//! endpoints — each from the document the management API answers with.

use patchbay_store::{AuditEntry, Drift, Endpoint};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{cell, dim, one_line, status, table, time};

fn typed<T: DeserializeOwned>(document: &Value) -> anyhow::Result<Vec<T>> {
    Ok(serde_json::from_value(document["items"].clone())?)
}

/// `GET /api/v1/connectors`: one line per connector.
pub fn connectors(document: &Value) -> anyhow::Result<String> {
    let items = super::items(document);
    if items.is_empty() {
        return Ok("no connectors\n".to_string());
    }
    let rows = items
        .iter()
        .map(|c| {
            [
                cell(&c["name"]),
                status(c["breaker"]["state"].as_str().unwrap_or("?")),
                cell(&c["recent"]["calls"]),
                cell(&c["recent"]["errors"]),
                c["recent"]["p95_ms"]
                    .as_f64()
                    .map_or("-".to_string(), |ms| format!("{ms:.0}ms")),
                headroom(&c["rate_limit"]),
                one_line(c["last_error"]["message"].as_str().unwrap_or("-"), 60),
            ]
        })
        .collect();
    Ok(table(
        [
            "CONNECTOR",
            "BREAKER",
            "CALLS",
            "ERRORS",
            "P95",
            "RATE HEADROOM",
            "LAST ERROR",
        ],
        rows,
    ))
}

fn headroom(rate: &Value) -> String {
    match (rate["limit_per_second"].as_f64(), rate["headroom"].as_f64()) {
        (Some(limit), Some(left)) => format!("{:.0}% of {limit}/s", left * 100.0),
        (Some(limit), None) => format!("{limit}/s"),
        _ => "-".to_string(),
    }
}

/// `GET /api/v1/connectors/{name}`: one connector, field by field.
pub fn connector(c: &Value) -> anyhow::Result<String> {
    let breaker = &c["breaker"];
    let recent = &c["recent"];
    let mut out = format!(
        "{}\n  breaker  {}  failure rate {}% over {} calls{}\n",
        cell(&c["name"]),
        status(breaker["state"].as_str().unwrap_or("?")),
        cell(&breaker["failure_rate"]),
        cell(&breaker["calls_in_window"]),
        breaker["retry_in_ms"]
            .as_u64()
            .map(|ms| format!(", probe in {ms}ms"))
            .unwrap_or_default()
    );
    // A connector that keys its breakers: each, worst first.
    for keyed in breaker["keyed"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "    {}  {}  failure rate {}% over {} calls{}\n",
            status(keyed["state"].as_str().unwrap_or("?")),
            cell(&keyed["key"]),
            cell(&keyed["failure_rate"]),
            cell(&keyed["calls_in_window"]),
            keyed["retry_in_ms"]
                .as_u64()
                .map(|ms| format!(", probe in {ms}ms"))
                .unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "  calls    {} in {} min, {} failed, p50 {} p95 {}\n",
        cell(&recent["calls"]),
        cell(&recent["window_minutes"]),
        cell(&recent["errors"]),
        ms(&recent["p50_ms"]),
        ms(&recent["p95_ms"]),
    ));
    out.push_str(&format!("  rate     {}\n", headroom(&c["rate_limit"])));
    if let Some(version) = c["api_version"].as_str() {
        out.push_str(&format!("  version  {version}\n"));
    }
    if let Some(ms) = c["paused_for_ms"].as_u64() {
        out.push_str(&format!("  paused   {ms}ms more (the upstream asked)\n"));
    }
    if c["last_error"].is_object() {
        out.push_str(&format!(
            "  last error {} {}\n",
            dim(&time(&c["last_error"]["at"])),
            cell(&c["last_error"]["message"])
        ));
    }
    if c["deprecation"].is_object() {
        let d = &c["deprecation"];
        out.push_str(&format!(
            "  deprecation {}  sunset {}\n",
            cell(&d["endpoint"]),
            cell(&d["sunset"])
        ));
    }
    if c["drift"].is_object() {
        out.push_str(&format!(
            "  drift    {} kind(s), {} reply(ies), last {}\n",
            cell(&c["drift"]["kinds"]),
            cell(&c["drift"]["occurrences"]),
            time(&c["drift"]["last_seen"])
        ));
    }
    Ok(out)
}

fn ms(value: &Value) -> String {
    value
        .as_f64()
        .map_or("-".to_string(), |ms| format!("{ms:.0}ms"))
}

/// `GET /api/v1/config`.
pub fn config(c: &Value) -> anyhow::Result<String> {
    let names = |key: &str| {
        c[key]
            .as_array()
            .map(|names| names.iter().map(cell).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    Ok(format!(
        "version     {}\nloaded at   {}\nflows       {}\nconnectors  {}\n",
        cell(&c["version"]),
        time(&c["loaded_at"]),
        names("flows"),
        names("connectors"),
    ))
}

/// `GET /api/v1/secrets`: names and when each was set, never a value.
pub fn secrets(document: &Value) -> anyhow::Result<String> {
    let items = super::items(document);
    if items.is_empty() {
        return Ok("no secrets\n".to_string());
    }
    let rows = items
        .iter()
        .map(|s| [cell(&s["name"]), time(&s["updated_at"])])
        .collect();
    Ok(table(["NAME", "UPDATED"], rows))
}

/// `GET /api/v1/audit`, newest first.
pub fn audit(document: &Value) -> anyhow::Result<String> {
    let entries: Vec<AuditEntry> = typed(document)?;
    if entries.is_empty() {
        return Ok("no audit entries\n".to_string());
    }
    let rows = entries
        .into_iter()
        .map(|entry| {
            [
                entry.id.to_string(),
                entry.at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                entry.actor,
                entry.method,
                entry.route,
                entry.target.unwrap_or_else(|| "-".into()),
                // No status: the node stopped before it answered.
                entry
                    .status
                    .map_or_else(|| "?".to_string(), |s| s.to_string()),
                entry.peer.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    Ok(table(
        [
            "ID", "AT", "ACTOR", "METHOD", "ROUTE", "TARGET", "STATUS", "PEER",
        ],
        rows,
    ))
}

/// `GET /api/v1/drift`.
pub fn drift(document: &Value) -> anyhow::Result<String> {
    let records: Vec<Drift> = typed(document)?;
    if records.is_empty() {
        return Ok("no contract drift recorded\n".to_string());
    }
    let rows = records
        .into_iter()
        .map(|record| {
            let kind = record.kind;
            [
                kind.connector,
                kind.operation,
                kind.response,
                if kind.pointer.is_empty() {
                    "/".to_string()
                } else {
                    kind.pointer
                },
                kind.expected,
                record.seen,
                record.count.to_string(),
                record.first_seen.format("%Y-%m-%d %H:%M:%S").to_string(),
                record.last_seen.format("%Y-%m-%d %H:%M:%S").to_string(),
            ]
        })
        .collect();
    Ok(table(
        [
            "CONNECTOR",
            "OPERATION",
            "RESPONSE",
            "WHERE",
            "EXPECTED",
            "SEEN",
            "COUNT",
            "FIRST SEEN",
            "LAST SEEN",
        ],
        rows,
    ))
}

/// `GET /api/v1/endpoints`.
pub fn endpoints(document: &Value) -> anyhow::Result<String> {
    let records: Vec<Endpoint> = typed(document)?;
    if records.is_empty() {
        return Ok("no delivery attempted yet\n".to_string());
    }
    const TIME: &str = "%Y-%m-%d %H:%M:%S";
    let rows = records
        .into_iter()
        .map(|record| {
            let state = match (&record.disabled_at, &record.failing_since) {
                (Some(_), _) => "disabled",
                (None, Some(_)) => "failing",
                (None, None) => "ok",
            };
            [
                record.name,
                status(state),
                record.delivered.to_string(),
                record.failed.to_string(),
                record.last_attempt_at.format(TIME).to_string(),
                record
                    .last_status
                    .map_or_else(|| "-".into(), |s| s.to_string()),
                record
                    .failing_since
                    .map_or_else(|| "-".into(), |t| t.format(TIME).to_string()),
                record.last_error.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    Ok(table(
        [
            "ENDPOINT",
            "STATE",
            "DELIVERED",
            "FAILED",
            "LAST ATTEMPT",
            "STATUS",
            "FAILING SINCE",
            "LAST ERROR",
        ],
        rows,
    ))
}
