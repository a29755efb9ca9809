//! A strict rate limit the mock enforces on everything it receives, for
//! checking that a client stays under an upstream's limit.
//!
//! GCRA (the "virtual scheduling" form of a leaky bucket): requests are due
//! one `interval` apart, and `burst - 1` intervals of earliness are
//! tolerated. This is written out here rather than taken from a rate-limit
//! crate on purpose: the client under test may use such a crate, and an
//! oracle that shares the implementation would share its bugs.

use std::time::{Duration, Instant};

pub(crate) struct Gcra {
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time of the next conforming request.
    due: Option<Instant>,
}

impl Gcra {
    /// `requests` per `per`, `burst` of them back to back at most.
    pub(crate) fn new(requests: u32, per: Duration, burst: u32) -> Self {
        let interval = per / requests.max(1);
        Gcra {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            due: None,
        }
    }

    /// Admits a request arriving `now`, or says how long until one would be.
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        let due = self.due.map_or(now, |due| due.max(now));
        if let Some(earliest) = due.checked_sub(self.tolerance)
            && now < earliest
        {
            return Err(earliest - now);
        }
        self.due = Some(due + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_requests_and_tolerates_the_burst() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut strict = Gcra::new(10, Duration::from_secs(1), 1);
        assert!(strict.admit(start).is_ok());
        assert_eq!(strict.admit(start + ms(40)), Err(ms(60)));
        assert!(strict.admit(start + ms(100)).is_ok());
        // Rejections do not consume capacity.
        assert!(strict.admit(start + ms(200)).is_ok());

        let mut bursty = Gcra::new(10, Duration::from_secs(1), 3);
        for _ in 0..3 {
            assert!(bursty.admit(start).is_ok());
        }
        assert_eq!(bursty.admit(start), Err(ms(100)));
        assert!(bursty.admit(start + ms(100)).is_ok());
    }
}
