//! The cap on requests in flight per webhook path
//! (`server.max_inflight_per_webhook`).
//!
//! One sender that is slow (trickling bodies, waiting on `sync` answers) or
//! merely busy would otherwise hold every connection and intake slot, and
//! starve the other paths. Past the cap a path answers 503 with
//! `Retry-After` at once, before reading the body: refusing costs nothing.
//!
//! A count per path behind one std mutex: it is held for a hash lookup and
//! an increment, never across an await, so it stays off the profile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Requests being handled, by webhook path.
#[derive(Debug)]
pub(crate) struct InFlight {
    limit: usize,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

/// One request's place; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    path: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl InFlight {
    pub fn new(limit: usize) -> InFlight {
        InFlight {
            limit,
            counts: Arc::default(),
        }
    }

    /// A place for one more request on `path`, or `None` when it already
    /// has `limit` in flight.
    pub fn enter(&self, path: &str) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get_mut(path) {
            Some(count) if *count >= self.limit => return None,
            Some(count) => *count += 1,
            None => {
                counts.insert(path.to_string(), 1);
            }
        }
        Some(Slot {
            path: path.to_string(),
            counts: self.counts.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.path) {
            *count -= 1;
            if *count == 0 {
                // Paths come and go with reloads: keep only busy ones.
                counts.remove(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_has_its_own_limit_and_slots_come_back() {
        let inflight = InFlight::new(2);
        let a1 = inflight.enter("/a").unwrap();
        let _a2 = inflight.enter("/a").unwrap();
        assert!(inflight.enter("/a").is_none());
        let _b = inflight.enter("/b").unwrap();
        drop(a1);
        assert!(inflight.enter("/a").is_some());
    }
}
