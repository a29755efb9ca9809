//! The instants at which runs this node put back come due (a run-level
//! retry, a wait, a delivery's next attempt), so the dispatcher wakes at
//! the earliest of them rather than at its next poll: a `run_retries: [1s]`
//! retry runs one second after the failure, not up to a poll interval
//! later.
//!
//! Polling stays the ground truth: an instant forgotten here (the node
//! restarted, the list was full, another node set it) costs at most a
//! poll interval, never a run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use patchbay_store::Clock;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Most instants remembered; beyond, the latest are left to polling. Each
/// is 16 bytes: a node with a hundred thousand runs waiting for days must
/// not hold them all.
const MOST_REMEMBERED: usize = 10_000;

/// Due instants on tokio's clock, shared by the executor (which sets them)
/// and the dispatcher (which sleeps until the earliest).
#[derive(Clone)]
pub(crate) struct DueTimes {
    inner: Arc<Inner>,
    clock: Arc<dyn Clock>,
}

struct Inner {
    // A std mutex: held for a push or a pop, never across an await.
    instants: Mutex<BinaryHeap<Reverse<Instant>>>,
    /// Told when a new instant is earlier than every one before it, so a
    /// sleeping dispatcher sleeps less.
    earlier: Notify,
}

impl DueTimes {
    pub fn new(clock: Arc<dyn Clock>) -> DueTimes {
        DueTimes {
            inner: Arc::new(Inner {
                instants: Mutex::default(),
                earlier: Notify::new(),
            }),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Reverse<Instant>>> {
        self.inner
            .instants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that a run comes due at `due` on the engine's clock.
    pub fn remember(&self, due: DateTime<Utc>) {
        let wait = (due - self.clock.now()).to_std().unwrap_or_default();
        let at = Instant::now() + wait;
        let mut instants = self.lock();
        if instants.len() >= MOST_REMEMBERED {
            // The heap keeps the earliest on top; the latest is not cheap
            // to find, so a full list takes no more.
            return;
        }
        let earliest = instants.peek().is_none_or(|Reverse(first)| at < *first);
        instants.push(Reverse(at));
        drop(instants);
        if earliest {
            self.inner.earlier.notify_one();
        }
    }

    /// Forgets the instants that have passed, returning whether any had:
    /// a run came due, and the dispatcher should claim.
    fn pass(&self) -> bool {
        let now = Instant::now();
        let mut instants = self.lock();
        let mut passed = false;
        while instants.peek().is_some_and(|Reverse(at)| *at <= now) {
            instants.pop();
            passed = true;
        }
        passed
    }

    fn earliest(&self) -> Option<Instant> {
        self.lock().peek().map(|Reverse(at)| *at)
    }

    /// Sleeps until `deadline` or the earliest remembered instant, whichever
    /// comes first, following instants set meanwhile.
    pub async fn sleep_until(&self, deadline: Instant) {
        loop {
            if self.pass() {
                return;
            }
            let until = self.earliest().map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                () = tokio::time::sleep_until(until) => {
                    self.pass();
                    return;
                }
                () = self.inner.earlier.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use patchbay_store::TokioClock;

    use super::*;

    fn due_times() -> DueTimes {
        DueTimes::new(Arc::new(TokioClock::new()))
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_until_the_earliest_instant_or_the_deadline() {
        let due = due_times();
        let start = Instant::now();
        due.remember(due.clock.now() + chrono::Duration::seconds(3));
        due.remember(due.clock.now() + chrono::Duration::seconds(1));
        due.sleep_until(start + Duration::from_secs(10)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        due.sleep_until(start + Duration::from_secs(10)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        // Nothing left: the deadline.
        due.sleep_until(start + Duration::from_secs(10)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_instant_set_while_sleeping_shortens_the_sleep() {
        let due = due_times();
        let start = Instant::now();
        let sleeper = {
            let due = due.clone();
            tokio::spawn(async move { due.sleep_until(start + Duration::from_secs(60)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        due.remember(due.clock.now() + chrono::Duration::milliseconds(400));
        sleeper.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_past_instant_wakes_at_once() {
        let due = due_times();
        let start = Instant::now();
        due.remember(due.clock.now() - chrono::Duration::seconds(5));
        due.sleep_until(start + Duration::from_secs(60)).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
