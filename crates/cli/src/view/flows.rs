//! Flows for people: the list as a table, and one flow as a tree — its
//! trigger, then its steps in order with their `for_each` fan-outs,
//! `on_error` fallbacks, `switch` branches and sub-flows, as the dashboard's
//! flow page draws it.

use serde_json::Value;

use super::{dim, paint, table};

/// A page of flows (`{items, next_cursor}`) as a table.
pub fn list(document: &Value) -> anyhow::Result<String> {
    let flows = super::items(document);
    if flows.is_empty() {
        return Ok("no flows\n".to_string());
    }
    let rows = flows
        .iter()
        .map(|flow| {
            let steps: Vec<&str> = flow["steps"]
                .as_array()
                .map(|steps| steps.iter().filter_map(|s| s["id"].as_str()).collect())
                .unwrap_or_default();
            [
                super::cell(&flow["name"]),
                super::cell(&flow["trigger"]["kind"]),
                trigger_settings(&flow["trigger"]),
                steps.join(" → "),
            ]
        })
        .collect();
    Ok(table(["NAME", "TRIGGER", "SETTINGS", "STEPS"], rows))
}

/// A trigger's settings as `key=value` pairs (its kind left out).
fn trigger_settings(trigger: &Value) -> String {
    trigger
        .as_object()
        .map(|settings| {
            settings
                .iter()
                .filter(|(key, value)| *key != "kind" && !value.is_null())
                .map(|(key, value)| format!("{key}={}", super::cell(value)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// One flow (`GET /api/v1/flows/{flow}`) as a tree.
pub fn tree(document: &Value) -> anyhow::Result<String> {
    let name = document["name"].as_str().unwrap_or("?");
    let mut out = format!("{}\n", paint(name, anstyle::Style::new().bold()));
    let steps = steps_of(&document["steps"]);
    let trigger = format!(
        "{} {}  {}",
        dim("trigger"),
        document["trigger"]["kind"].as_str().unwrap_or("?"),
        trigger_settings(&document["trigger"])
    );
    let last = steps.is_empty();
    out.push_str(&format!(
        "{}{}\n",
        if last { "└─ " } else { "├─ " },
        trigger.trim_end()
    ));
    branch(&mut out, "", steps);
    if let Some(delays) = document["run_retries_ms"]
        .as_array()
        .filter(|d| !d.is_empty())
    {
        let delays: Vec<String> = delays
            .iter()
            .filter_map(Value::as_u64)
            .map(|ms| humantime::format_duration(std::time::Duration::from_millis(ms)).to_string())
            .collect();
        out.push_str(&format!(
            "{} {}\n",
            dim("run retries after"),
            delays.join(", ")
        ));
    }
    Ok(out)
}

fn steps_of(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// Draws `steps` under `prefix`, each with what hangs below it.
fn branch(out: &mut String, prefix: &str, steps: &[Value]) {
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        out.push_str(&format!(
            "{prefix}{}{}\n",
            if last { "└─ " } else { "├─ " },
            step_line(step)
        ));
        let inner = format!("{prefix}{}", if last { "   " } else { "│  " });
        let mut children: Vec<(String, &[Value])> = Vec::new();
        for case in steps_of(&step["branches"]) {
            children.push((
                format!("case {}", case["name"].as_str().unwrap_or("?")),
                steps_of(&case["steps"]),
            ));
        }
        let fallback = steps_of(&step["fallback"]);
        if !fallback.is_empty() {
            children.push(("on error".to_string(), fallback));
        }
        for (j, (label, steps)) in children.iter().enumerate() {
            let last_child = j + 1 == children.len();
            out.push_str(&format!(
                "{inner}{}{}\n",
                if last_child { "└─ " } else { "├─ " },
                dim(label)
            ));
            let deeper = format!("{inner}{}", if last_child { "   " } else { "│  " });
            branch(out, &deeper, steps);
        }
    }
}

/// A step in one line: id, kind, what it calls or computes, and how it
/// repeats and fails.
fn step_line(step: &Value) -> String {
    let mut parts = vec![
        paint(
            step["id"].as_str().unwrap_or("?"),
            anstyle::Style::new().bold(),
        ),
        step["kind"].as_str().unwrap_or("?").to_string(),
    ];
    if let Some(connector) = step["connector"].as_str() {
        let call = [
            Some(connector),
            step["method"].as_str(),
            step["path"].as_str(),
        ];
        parts.push(call.into_iter().flatten().collect::<Vec<_>>().join(" "));
    }
    if let Some(flow) = step["runs_flow"].as_str() {
        parts.push(format!("→ flow {flow}"));
    }
    if step["paginated"] == Value::Bool(true) {
        parts.push("every page".to_string());
    }
    if let Some(each) = step["for_each"].as_object() {
        parts.push(format!(
            "for each {} ({} at once)",
            each.get("items").and_then(Value::as_str).unwrap_or("?"),
            each.get("concurrency").map(super::cell).unwrap_or_default()
        ));
    }
    if let Some(when) = step["when"].as_str() {
        parts.push(format!("when {when}"));
    }
    match step["on_error"].as_str() {
        None | Some("retry") => {}
        Some(policy) => parts.push(dim(&format!("on error {policy}"))),
    }
    parts.join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_flow_prints_as_a_tree_with_its_branches_and_fallbacks() {
        let flow = json!({
            "name": "order",
            "trigger": { "kind": "webhook", "path": "/hooks/order", "mode": "async" },
            "steps": [
                { "id": "charge", "kind": "call", "connector": "payments", "method": "POST",
                  "path": "/charges", "on_error": "fallback", "paginated": false,
                  "fallback": [ { "id": "backup", "kind": "call", "connector": "backup",
                                   "method": "POST", "path": "/charges", "on_error": "retry" } ],
                  "branches": [] },
                { "id": "route", "kind": "switch", "on_error": "retry", "fallback": [],
                  "branches": [
                    { "name": "big", "steps": [ { "id": "alert", "kind": "transform", "on_error": "continue" } ] },
                    { "name": "default", "steps": [] }
                  ] }
            ],
            "run_retries_ms": [1000, 60000]
        });
        let expected = "\
order
├─ trigger webhook  mode=async path=/hooks/order
├─ charge  call  payments POST /charges  on error fallback
│  └─ on error
│     └─ backup  call  backup POST /charges
└─ route  switch
   ├─ case big
   │  └─ alert  transform  on error continue
   └─ case default
run retries after 1s, 1m
";
        assert_eq!(tree(&flow).unwrap(), expected);
    }
}
