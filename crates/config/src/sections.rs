//! Reading `patchbay.yaml` a part at a time, so that one mistake does not
//! hide the next.
//!
//! serde stops at the first error of a document. When `patchbay.yaml` does
//! not deserialize as a whole, the file is cut into its top-level sections
//! (`connectors`, `server`, ...) and each is deserialized on its own; a
//! section that still fails and holds named entries (`connectors`, inline
//! `flows`) is cut again, one connector or flow at a time. Every part that
//! fails gives its own diagnostic, and every part that reads is kept, so
//! validation goes on with what could be read.
//!
//! Each part is deserialized from a copy of the file in which every other
//! line is blank: lines and columns stay those of the file, so diagnostics
//! and [`Located`](crate::Located) values point where they should, and the
//! messages are serde's own (with their did-you-mean suggestions).
//!
//! The cut follows the YAML parser's events, not the text: it works on
//! block-style YAML whose parts start on lines of their own, which is how
//! configuration is written. A file that is not valid YAML, holds several
//! documents, is written in flow style at the top, or uses aliases (an alias
//! may point into another part) is not cut: its first error is reported
//! alone.

use serde_saphyr::granit_parser::{Event, Parser, StructureStyle};

use crate::diagnostic::Report;
use crate::project::{ProjectConfig, Source, parse_yaml};

/// Sections whose failure leaves the connectors known: checks of the
/// references from flows to connectors still make sense.
const NOT_CONNECTORS: [&str; 6] = ["flows", "server", "api", "store", "engine", "telemetry"];

/// `patchbay.yaml` as far as it could be read.
pub(crate) struct RootRead {
    pub config: ProjectConfig,
    /// Every problem found; empty when the file deserialized as a whole.
    pub report: Report,
    /// False when some connector, or a section that may have held them,
    /// could not be read: a flow's connector may then look unknown.
    pub connectors_known: bool,
}

/// Deserializes the root file, part by part when it fails as a whole.
pub(crate) fn read_root(source: &Source) -> RootRead {
    let first = match parse_yaml::<ProjectConfig>(source) {
        Ok(config) => {
            return RootRead {
                config,
                report: Report::default(),
                connectors_known: true,
            };
        }
        Err(first) => first,
    };
    let mut read = RootRead {
        config: ProjectConfig::default(),
        report: Report::default(),
        connectors_known: false,
    };
    let Some(outline) = Outline::of(&source.text) else {
        read.report.push(first);
        return read;
    };
    read.connectors_known = true;
    let lines: Vec<&str> = source.text.split('\n').collect();
    let part = |keep: &[(usize, usize)]| Source {
        path: source.path.clone(),
        text: outline.part(&lines, keep),
    };
    for section in &outline.sections {
        let whole = match parse_yaml::<ProjectConfig>(&part(&[(section.first, section.last)])) {
            Ok(config) => {
                merge(&mut read.config, config, &section.key);
                continue;
            }
            Err(problem) => problem,
        };
        if !NOT_CONNECTORS.contains(&section.key.as_str()) {
            read.connectors_known = false;
        }
        let before = read.report.len();
        for entry in &section.entries {
            let keep = [(section.first, section.first), (entry.first, entry.last)];
            match parse_yaml::<ProjectConfig>(&part(&keep)) {
                Ok(config) => merge(&mut read.config, config, &section.key),
                Err(problem) => read.report.push(problem),
            }
        }
        // A problem of the section as a whole (a repeated name, a value
        // that is not a mapping) is in none of its entries.
        if read.report.len() == before {
            read.report.push(whole);
        }
    }
    // The first error of the whole file is among those of its parts, unless
    // the parts read well on their own (a repeated section): then it is
    // all there is to say.
    if !read
        .report
        .diagnostics
        .iter()
        .any(|d| (d.line, d.column) == (first.line, first.column))
    {
        read.report.push(first);
        read.connectors_known = false;
    }
    read.report = read.report.sorted();
    read
}

/// Moves the section `key` of `part` (a file holding that section alone)
/// into `into`. Connectors and flows add up, entry by entry.
fn merge(into: &mut ProjectConfig, part: ProjectConfig, key: &str) {
    // Destructured in full, so a new section cannot be forgotten here.
    let ProjectConfig {
        connectors,
        flows,
        server,
        api,
        store,
        engine,
        telemetry,
    } = part;
    match key {
        "connectors" => into.connectors.extend(connectors),
        "flows" => into.flows.extend(flows),
        "server" => into.server = server,
        "api" => into.api = api,
        "store" => into.store = store,
        "engine" => into.engine = engine,
        "telemetry" => into.telemetry = telemetry,
        // Any other key is refused by `deny_unknown_fields`, so a part
        // holding one never gets here.
        _ => {}
    }
}

/// Where the parts of a block-style YAML mapping are, by line (1-based,
/// inclusive ranges).
struct Outline {
    /// Lines before the first key (comments, `---`): kept in every part.
    header: usize,
    sections: Vec<Section>,
}

/// One top-level key and its value.
struct Section {
    key: String,
    first: usize,
    last: usize,
    /// The entries of a block mapping value, each on lines of its own;
    /// empty when the value is anything else.
    entries: Vec<Lines>,
}

/// The lines of one entry of a section.
struct Lines {
    first: usize,
    last: usize,
}

/// A node event, as much of it as cutting needs.
enum Node {
    /// A scalar and the line it starts on.
    Scalar(String, usize),
    /// A mapping; true when in block style.
    Mapping(bool),
    Sequence,
    End,
}

impl Outline {
    /// The outline of `text`; `None` when it cannot be cut safely.
    fn of(text: &str) -> Option<Outline> {
        let mut nodes = Vec::new();
        let mut documents = 0;
        for item in Parser::new_from_str(text) {
            let (event, span) = item.ok()?;
            match event {
                Event::DocumentStart(..) => {
                    documents += 1;
                    if documents > 1 {
                        return None;
                    }
                }
                // An alias may point into another part.
                Event::Alias(_) => return None,
                Event::Scalar(value, ..) => {
                    nodes.push(Node::Scalar(value.into_owned(), span.start.line()));
                }
                Event::MappingStart(style, ..) => {
                    nodes.push(Node::Mapping(style == StructureStyle::Block));
                }
                Event::SequenceStart(..) => nodes.push(Node::Sequence),
                Event::MappingEnd | Event::SequenceEnd => nodes.push(Node::End),
                _ => {}
            }
        }
        let total = text.split('\n').count();
        let keys = block_entries(&nodes, 0)?;
        let first_line = keys.first()?.line;
        let mut sections = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            let last = match keys.get(index + 1) {
                Some(next) if next.line > key.line => next.line - 1,
                Some(_) => return None,
                None => total,
            };
            let entries = match block_entries(&nodes, key.value) {
                Some(entries) => lines_of(&entries, key.line, last),
                None => Vec::new(),
            };
            sections.push(Section {
                key: key.name.clone(),
                first: key.line,
                last,
                entries,
            });
        }
        Some(Outline {
            header: first_line - 1,
            sections,
        })
    }

    /// The file with only the header and the `keep` line ranges left; every
    /// other line is blank.
    fn part(&self, lines: &[&str], keep: &[(usize, usize)]) -> String {
        lines
            .iter()
            .enumerate()
            .map(|(index, line)| {
                let number = index + 1;
                let kept = number <= self.header
                    || keep
                        .iter()
                        .any(|(first, last)| (*first..=*last).contains(&number));
                if kept { *line } else { "" }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One key of a mapping: its name, its line, and where its value's events
/// start.
struct Key {
    name: String,
    line: usize,
    value: usize,
}

/// The keys of the block mapping whose start is `nodes[start]`; `None` when
/// it is not a block mapping with plain keys.
fn block_entries(nodes: &[Node], start: usize) -> Option<Vec<Key>> {
    let Node::Mapping(true) = nodes.get(start)? else {
        return None;
    };
    let mut keys = Vec::new();
    let mut at = start + 1;
    loop {
        match nodes.get(at)? {
            Node::End => return Some(keys),
            Node::Scalar(name, line) => {
                keys.push(Key {
                    name: name.clone(),
                    line: *line,
                    value: at + 1,
                });
                at = after(nodes, at + 1)?;
            }
            // A mapping or sequence as a key.
            Node::Mapping(_) | Node::Sequence => return None,
        }
    }
}

/// The index just past the node starting at `nodes[start]`.
fn after(nodes: &[Node], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = start;
    loop {
        match nodes.get(at)? {
            Node::Scalar(..) => {}
            Node::Mapping(_) | Node::Sequence => depth += 1,
            Node::End => depth = depth.checked_sub(1)?,
        }
        at += 1;
        if depth == 0 {
            return Some(at);
        }
    }
}

/// The line ranges of a section's entries, within the section's lines
/// `first..=last`; empty when two entries share a line.
fn lines_of(entries: &[Key], first: usize, last: usize) -> Vec<Lines> {
    let mut ranges = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        if entry.line <= first {
            return Vec::new();
        }
        let end = match entries.get(index + 1) {
            Some(next) if next.line > entry.line => next.line - 1,
            Some(_) => return Vec::new(),
            None => last,
        };
        ranges.push(Lines {
            first: entry.line,
            last: end,
        });
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> RootRead {
        read_root(&Source {
            path: "patchbay.yaml".into(),
            text: text.to_string(),
        })
    }

    fn lines(read: &RootRead) -> Vec<String> {
        read.report
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn a_valid_file_reads_whole() {
        let read = read("connectors:\n  a: { url: http://a }\nengine: { workers: 3 }\n");
        assert!(read.report.is_empty());
        assert!(read.connectors_known);
        assert_eq!(read.config.engine.workers, 3);
    }

    #[test]
    fn each_bad_connector_and_section_is_reported() {
        let read = read(
            "# comment\n\
             connectors:\n  \
               a:\n    url: http://a\n    timout: 3s\n  \
               good:\n    url: http://good\n  \
               b:\n    url: http://b\n    timeout: 5\n\
             server:\n  lisen: 127.0.0.1:1\n\
             engine:\n  workers: 2\n",
        );
        let lines = lines(&read);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0]
                .starts_with("patchbay.yaml:5:5: unknown key `timout` — did you mean `timeout`?"),
            "{lines:#?}"
        );
        assert!(lines[1].starts_with("patchbay.yaml:10:"), "{lines:#?}");
        assert!(
            lines[2]
                .starts_with("patchbay.yaml:12:3: unknown key `lisen` — did you mean `listen`?"),
            "{lines:#?}"
        );
        // What could be read is kept, with its lines.
        assert_eq!(read.config.engine.workers, 2);
        let good = &read.config.connectors["good"];
        assert_eq!((good.url.value.as_str(), good.url.line), ("http://good", 7));
        assert!(!read.config.connectors.contains_key("a"));
        assert!(!read.connectors_known);
    }

    #[test]
    fn a_bad_settings_section_leaves_the_connectors_known() {
        let read = read("connectors:\n  a: { url: http://a }\nstore: { pth: x }\n");
        assert_eq!(read.report.len(), 1, "{:?}", lines(&read));
        assert!(read.connectors_known);
        assert!(read.config.connectors.contains_key("a"));
    }

    #[test]
    fn files_that_cannot_be_cut_report_their_first_error() {
        for text in [
            // Flow style at the top.
            "{connectors: {a: {url: 1, x: 1}}, server: {lisen: x}}\n",
            // An alias may point into another section.
            "engine: &e { workers: 1 }\nserver: { lisen: x }\nstore: *e\n",
            // Not YAML.
            "connectors:\n  a: [\n",
        ] {
            let read = read(text);
            assert_eq!(read.report.len(), 1, "{text}: {:?}", lines(&read));
            assert!(!read.connectors_known);
        }
    }

    #[test]
    fn a_repeated_section_is_reported_once() {
        let read = read("engine: { workers: 1 }\nengine: { workers: 2 }\n");
        assert_eq!(read.report.len(), 1, "{:?}", lines(&read));
    }
}
