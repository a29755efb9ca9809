//! An idempotency store in the style of payment APIs, and the side-effect
//! counts that let a test prove "exactly once".
//!
//! Routes marked idempotent look at the request's idempotency header. The
//! first request with a key is processed normally, counted as one side
//! effect, and its reply stored; a repeat with the same key and body gets the
//! stored reply again (marked `Idempotent-Replayed: true`) and has no
//! effect. A repeat while the first is still being answered gets `409`, one
//! with a different body `422`, as the big APIs do. A reply of 500 or more,
//! or a reset connection, means nothing was applied: it is neither counted
//! nor stored, so a retry with the same key is processed anew. Requests
//! without a key are processed and counted every time.

use std::collections::HashMap;

use bytes::Bytes;

use super::pattern::PathPattern;
use super::reply::Reply;
use super::routes::normalize_method;

#[derive(Default)]
pub(crate) struct Idempotency {
    /// Marked routes: method (`*` for any), pattern and header name.
    routes: Vec<(String, PathPattern, String)>,
    entries: HashMap<String, Entry>,
    /// Side effects applied per key; keyless ones under `None`.
    effects: HashMap<Option<String>, usize>,
    replays: usize,
}

enum Entry {
    /// Being processed; its body is kept to spot a reused key.
    Pending(Bytes),
    Done {
        body: Bytes,
        reply: Reply,
    },
}

/// What to do with a request.
pub(crate) enum Verdict {
    /// Not an idempotent route: process as usual.
    Ordinary,
    /// Process it, then [`Idempotency::settle`] with this key.
    Process(Option<String>),
    /// Answer this without processing.
    Answer(Reply),
}

impl Idempotency {
    pub(crate) fn mark(&mut self, method: &str, pattern: &str, header: &str) {
        self.routes.push((
            normalize_method(method),
            PathPattern::parse(pattern),
            header.to_ascii_lowercase(),
        ));
    }

    /// Looks a request up; reserves its key when it is the first.
    pub(crate) fn check(
        &mut self,
        method: &str,
        path: &str,
        header: impl Fn(&str) -> Option<String>,
        body: &Bytes,
    ) -> Verdict {
        let Some((_, _, name)) = self
            .routes
            .iter()
            .find(|(m, p, _)| (m == "*" || m == method) && p.matches(path).is_some())
        else {
            return Verdict::Ordinary;
        };
        let Some(key) = header(name) else {
            return Verdict::Process(None);
        };
        match self.entries.get(&key) {
            None => {
                self.entries
                    .insert(key.clone(), Entry::Pending(body.clone()));
                Verdict::Process(Some(key))
            }
            Some(Entry::Pending(first) | Entry::Done { body: first, .. }) if first != body => {
                Verdict::Answer(Reply::error(422, "idempotency_key_reused"))
            }
            Some(Entry::Pending(_)) => Verdict::Answer(Reply::error(409, "idempotency_key_in_use")),
            Some(Entry::Done { reply, .. }) => {
                self.replays += 1;
                let mut replay = reply.clone().with_header("idempotent-replayed", "true");
                replay.delay = std::time::Duration::ZERO;
                Verdict::Answer(replay)
            }
        }
    }

    /// Records the outcome of a processed request.
    pub(crate) fn settle(&mut self, key: Option<String>, reply: &Reply) {
        let applied = reply.status < 500 && !reply.reset;
        match &key {
            Some(k) if applied => {
                if let Some(Entry::Pending(body)) = self.entries.remove(k) {
                    self.entries.insert(
                        k.clone(),
                        Entry::Done {
                            body,
                            reply: reply.clone(),
                        },
                    );
                }
            }
            Some(k) => {
                self.entries.remove(k);
            }
            None => {}
        }
        if applied {
            *self.effects.entry(key).or_default() += 1;
        }
    }

    pub(crate) fn side_effects(&self, key: &str) -> usize {
        self.effects
            .get(&Some(key.to_string()))
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn side_effects_total(&self) -> usize {
        self.effects.values().sum()
    }

    pub(crate) fn replays(&self) -> usize {
        self.replays
    }
}
