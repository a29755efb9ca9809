//! [`SkippingClock`]: wall time plus an offset a test moves forward, so a
//! flow's `wait: 10m` or a run retry due in 30 s happens at once instead of
//! holding the test. Only engine time skips (due times of waits and run
//! retries); a connector's own backoff and timeouts stay real.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use patchbay_store::Clock;

#[derive(Debug, Default)]
pub struct SkippingClock {
    offset_ms: AtomicI64,
}

impl SkippingClock {
    /// Moves the clock forward to `to`, if that is later than now.
    pub fn skip_to(&self, to: DateTime<Utc>) {
        let ahead = (to - self.now()).num_milliseconds();
        if ahead > 0 {
            // A millisecond more: due times are compared to the millisecond.
            self.offset_ms.fetch_add(ahead + 1, Ordering::SeqCst);
        }
    }

    /// How far the clock was moved, in total.
    pub fn skipped(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

impl Clock for SkippingClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_moves_now_forward_and_never_back() {
        let clock = SkippingClock::default();
        let target = Utc::now() + TimeDelta::seconds(600);
        clock.skip_to(target);
        assert!(clock.now() >= target);
        assert!(clock.skipped() >= TimeDelta::seconds(599));
        let before = clock.skipped();
        clock.skip_to(Utc::now());
        assert_eq!(clock.skipped(), before);
    }
}
