//! How list and show commands print: a table or a readable rendering for
//! people, or with `--json` (`-o json`) the document itself, exactly as the
//! management API answers it. Whether a command read the project's store
//! or asked a node (`--url`), the document is the same, and so is what is
//! printed from it.
//!
//! Colours only on a terminal, and never when `NO_COLOR` is set to a
//! non-empty value (<https://no-color.org>).

pub mod flows;
pub mod records;
pub mod runs;

use std::io::IsTerminal;
use std::sync::OnceLock;

use anstyle::{AnsiColor, Style};
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

/// `--json` / `-o json|table` of every list and show command.
#[derive(Clone, Copy, Debug, Default, clap::Args)]
pub struct Format {
    /// Print the JSON document (as the management API answers) instead of
    /// a table.
    #[arg(long, conflicts_with = "output")]
    json: bool,
    /// The output format.
    #[arg(long, short, value_enum)]
    output: Option<Kind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    Table,
    Json,
}

impl Format {
    pub fn json(self) -> bool {
        self.json || self.output == Some(Kind::Json)
    }
}

/// Prints `document` as JSON with `--json`, else as `render` makes it.
pub fn emit(
    document: &Value,
    format: Format,
    render: impl FnOnce(&Value) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    if format.json() {
        crate::outln!("{}", serde_json::to_string_pretty(document)?);
    } else {
        crate::out!("{}", render(document)?);
    }
    Ok(())
}

/// Whether standard output gets colours.
fn coloured() -> bool {
    static COLOURED: OnceLock<bool> = OnceLock::new();
    *COLOURED.get_or_init(|| {
        std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
    })
}

/// `text` in `style` when colours are on.
pub fn paint(text: &str, style: Style) -> String {
    if coloured() && !text.is_empty() {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// Dim text: times, ids, what matters less.
pub fn dim(text: &str) -> String {
    paint(text, Style::new().dimmed())
}

/// A run's or a step's status, coloured by how it went.
pub fn status(text: &str) -> String {
    let colour = match text {
        "succeeded" | "ok" | "closed" | "delivered" => AnsiColor::Green,
        "dead" | "failed" | "open" | "disabled" => AnsiColor::Red,
        "running" | "retrying" | "half_open" | "failing" => AnsiColor::Yellow,
        "queued" => AnsiColor::Cyan,
        _ => return text.to_string(),
    };
    paint(text, Style::new().fg_color(Some(colour.into())))
}

/// A borderless table with a header, columns two spaces apart, as
/// `kubectl get` prints.
pub fn table<const N: usize>(header: [&str; N], rows: Vec<[String; N]>) -> String {
    let mut table = Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.map(|h| paint(h, Style::new().bold())));
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut out = table.trim_fmt();
    out.push('\n');
    out
}

/// Text of a JSON value for a cell: strings bare, `null` as `-`.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` (UTC), or `-`.
pub fn time(value: &Value) -> String {
    value
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "-".to_string())
}

/// The first line of a text, cut to `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max || text.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

/// The `items` of a page document.
pub fn items(document: &Value) -> &[Value] {
    document["items"].as_array().map_or(&[], Vec::as_slice)
}

/// A line on standard error saying how to get the next page, when there
/// is one.
pub fn more(document: &Value, how: &str) {
    if let Some(cursor) = document["next_cursor"].as_str() {
        eprintln!("more: {how} {cursor}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_two_spaces_apart_without_trailing_blanks() {
        let out = table(
            ["NAME", "STATE"],
            vec![["a".into(), "ok".into()], ["longer".into(), "-".into()]],
        );
        assert_eq!(out, "NAME    STATE\na       ok\nlonger  -\n");
    }

    #[test]
    fn one_line_cuts_long_and_multi_line_texts() {
        assert_eq!(one_line("short", 10), "short");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("a\nb", 10), "a…");
    }
}
