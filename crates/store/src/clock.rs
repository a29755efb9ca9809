//! [`Clock`]: where the store and the engine read the current time.
//!
//! Every instant the engine and the store compare or record (a run's due
//! time, a lease's expiry, when a run was created, claimed or finished, the
//! cutoff of retention) comes from one clock, handed to both, instead of
//! each place reading the system clock itself. Production uses
//! [`SystemClock`]; tests use [`TokioClock`], so waits, run retries and
//! lease expiry can be tested under tokio's paused time in milliseconds.
//!
//! Production reads wall time, not a monotonic clock anchored at start:
//! due times and leases are stored as instants and compared by every node
//! sharing the store, after restarts too, so they must mean the same
//! instant to all of them. A monotonic clock does not follow NTP's
//! corrections and drifts from wall time over a long uptime (it also
//! stops while the machine sleeps), so two nodes, or one node before and
//! after a restart, would disagree on when a run is due. Wall time may
//! step when NTP corrects it; a due time then comes a little early or late,
//! which a durable queue tolerates.
//!
//! [`TokioClock`] is wall time at its creation plus the time elapsed since
//! on tokio's clock, so it moves when a test advances paused time
//! (`tokio::time::advance`, or auto-advance while the runtime is idle).
//! Under a running clock it is a monotonic clock anchored at start: right
//! for tests, wrong for a long-running node for the reasons above.

use std::fmt::Debug;

use chrono::{DateTime, TimeDelta, Utc};

/// The current time, as the store and the engine see it.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall time: the system's clock, the default everywhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Follows tokio's clock: wall time when created, plus the time elapsed on
/// tokio's clock since, so it advances when paused time advances.
///
/// Create it inside the runtime whose clock it should follow, and share one
/// between every store and engine of a test: two of them created at
/// different points of paused time would disagree.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    origin: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads the wall time now, then moves with tokio's clock.
    pub fn new() -> TokioClock {
        TokioClock {
            origin: Utc::now(),
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        // Elapsed time beyond what chrono can add (hundreds of millions of
        // years) saturates rather than panics.
        TimeDelta::from_std(self.start.elapsed())
            .ok()
            .and_then(|elapsed| self.origin.checked_add_signed(elapsed))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_with_paused_time_only() {
        let clock = TokioClock::new();
        let start = clock.now();
        // Real time passes, tokio's paused clock does not.
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), start);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now() - start, TimeDelta::seconds(90));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now() - start, TimeDelta::seconds(3690));
    }

    #[test]
    fn the_system_clock_reads_wall_time() {
        let before = Utc::now();
        let now = SystemClock.now();
        assert!(before <= now && now <= Utc::now());
    }
}
