//! Size caps: how large one step's journal entry, a run's output and a flow's state may
//! grow, so that a tiny event cannot make the store grow by hundreds of megabytes.
//!
//! Sizes are the length of the value as compact JSON, counted by serialising into a
//! counter rather than into a buffer. Exceeding a cap is a permanent failure of the step
//! (or the run) that names the size and the setting; what was journalled before stays.

use serde_json::Value;

/// What a run may grow to, and how often it may stop the node.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Largest journal entry, as JSON bytes.
    pub journal_entry_bytes: usize,
    /// Largest run output or flow state, as JSON bytes.
    pub run_output_bytes: usize,
    /// Claims without progress after which a run is dead.
    pub claims_without_progress: u32,
}

impl Caps {
    /// The caps of a project's `engine:` settings.
    pub fn new(engine: &patchbay_config::EngineConfig) -> Caps {
        Caps {
            journal_entry_bytes: engine.max_journal_entry_bytes,
            run_output_bytes: engine.max_run_output_bytes,
            claims_without_progress: engine.max_claims_without_progress,
        }
    }

    /// Refuses a step result whose journal entry (its output and the request summary)
    /// would exceed the journal cap.
    pub fn check_entry(&self, output: &Value, request: Option<&Value>) -> Result<(), String> {
        let size = json_len(output) + request.map_or(0, json_len);
        if size > self.journal_entry_bytes {
            return Err(format!(
                "the step's journal entry would be {size} bytes, more than \
                 engine.max_journal_entry_bytes ({})",
                self.journal_entry_bytes
            ));
        }
        Ok(())
    }

    /// Refuses a run output or flow state over the run output cap; `what` names it.
    pub fn check_output(&self, what: &str, value: &Value) -> Result<(), String> {
        let size = json_len(value);
        if size > self.run_output_bytes {
            return Err(format!(
                "the {what} would be {size} bytes, more than engine.max_run_output_bytes ({})",
                self.run_output_bytes
            ));
        }
        Ok(())
    }
}

/// Length of `value` as compact JSON.
fn json_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` into a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn caps(bytes: usize) -> Caps {
        Caps {
            journal_entry_bytes: bytes,
            run_output_bytes: bytes,
            claims_without_progress: 3,
        }
    }

    #[test]
    fn sizes_are_compact_json_lengths() {
        let value = json!({"a": [1, 2, "x"]});
        assert_eq!(
            json_len(&value),
            serde_json::to_string(&value).unwrap().len()
        );
    }

    #[test]
    fn entries_count_output_and_request() {
        let output = json!("x".repeat(50));
        let request = json!({"url": "y".repeat(50)});
        assert!(caps(200).check_entry(&output, Some(&request)).is_ok());
        let error = caps(100).check_entry(&output, Some(&request)).unwrap_err();
        assert_eq!(
            error,
            "the step's journal entry would be 112 bytes, more than \
             engine.max_journal_entry_bytes (100)"
        );
    }

    #[test]
    fn outputs_name_what_is_too_large() {
        let error = caps(10)
            .check_output("flow state", &json!([1, 2, 3, 4, 5, 6]))
            .unwrap_err();
        assert_eq!(
            error,
            "the flow state would be 13 bytes, more than engine.max_run_output_bytes (10)"
        );
    }
}
