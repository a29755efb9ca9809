//! Latency summaries: nearest-rank percentiles, mean, min and max, reported
//! in microseconds.

use std::time::Duration;

use serde_json::{Value, json};

/// Summary of a set of latency samples, in microseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    pub min_us: f64,
    pub max_us: f64,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none.
    pub fn from_samples(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut nanos: Vec<u128> = samples.iter().map(Duration::as_nanos).collect();
        nanos.sort_unstable();
        let total: u128 = nanos.iter().sum();
        let us = |n: u128| n as f64 / 1_000.0;
        Some(Summary {
            count: nanos.len(),
            p50_us: us(nearest_rank(&nanos, 50.0)),
            p90_us: us(nearest_rank(&nanos, 90.0)),
            p99_us: us(nearest_rank(&nanos, 99.0)),
            mean_us: us(total) / nanos.len() as f64,
            min_us: us(nanos[0]),
            max_us: us(nanos[nanos.len() - 1]),
        })
    }

    /// The summary as a JSON object, values rounded to 0.1 µs.
    pub fn to_json(&self) -> Value {
        let r = |v: f64| (v * 10.0).round() / 10.0;
        json!({
            "count": self.count,
            "p50_us": r(self.p50_us),
            "p90_us": r(self.p90_us),
            "p99_us": r(self.p99_us),
            "mean_us": r(self.mean_us),
            "min_us": r(self.min_us),
            "max_us": r(self.max_us),
        })
    }
}

/// The nearest-rank percentile of sorted, non-empty `values`: the smallest
/// value such that at least `p` percent of the values are less or equal.
fn nearest_rank(sorted: &[u128], p: f64) -> u128 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_micros(v)).collect()
    }

    #[test]
    fn empty_has_no_summary() {
        assert_eq!(Summary::from_samples(&[]), None);
    }

    #[test]
    fn percentiles_use_nearest_rank_whatever_the_order() {
        // 1..=100 µs shuffled: p50 is the 50th value, p90 the 90th, p99 the 99th.
        let mut values: Vec<u64> = (1..=100).collect();
        values.reverse();
        values.swap(3, 70);
        let s = Summary::from_samples(&micros(&values)).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_us, 50.0);
        assert_eq!(s.p90_us, 90.0);
        assert_eq!(s.p99_us, 99.0);
        assert_eq!(s.min_us, 1.0);
        assert_eq!(s.max_us, 100.0);
        assert_eq!(s.mean_us, 50.5);
    }

    #[test]
    fn a_single_sample_is_every_percentile() {
        let s = Summary::from_samples(&[Duration::from_nanos(1_500)]).unwrap();
        assert_eq!((s.p50_us, s.p99_us, s.mean_us), (1.5, 1.5, 1.5));
    }

    #[test]
    fn small_sets_round_ranks_up() {
        // Three samples: p50 → rank 2, p90 and p99 → rank 3.
        let s = Summary::from_samples(&micros(&[30, 10, 20])).unwrap();
        assert_eq!((s.p50_us, s.p90_us, s.p99_us), (20.0, 30.0, 30.0));
    }

    #[test]
    fn json_rounds_to_tenths_of_a_microsecond() {
        let s = Summary::from_samples(&[Duration::from_nanos(1_234)]).unwrap();
        assert_eq!(s.to_json()["p50_us"], json!(1.2));
        assert_eq!(s.to_json()["count"], json!(1));
    }
}
