//! Token buckets by key, the rate limits are made of: each bucket holds up to `burst` tokens and
//! fills at `per_second`; what a caller takes must be there, or it learns how long to wait.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at most; past it, those whose buckets are full again are forgotten.
const TRACKED: usize = 100_000;

/// A wait in whole seconds, at least one (for `Retry-After`).
pub fn seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

pub struct Buckets<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K> Default for Buckets<K> {
    fn default() -> Self {
        Buckets { buckets: Mutex::default() }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// The rate it was filled at.
    rate: Rate,
}

impl Bucket {
    fn full(now: Instant, rate: Rate) -> Bucket {
        Bucket { tokens: rate.burst, at: now, rate }
    }

    /// The bucket at `now` under `rate`: filled since it was last seen, or, when its rate was
    /// changed since (a platform admin raised or lowered the limit), full at the new one: a
    /// changed limit holds at once.
    fn filled(self, now: Instant, rate: Rate) -> Bucket {
        if self.rate != rate {
            return Bucket::full(now, rate);
        }
        let tokens = self.tokens + now.duration_since(self.at).as_secs_f64() * rate.per_second;
        Bucket { tokens: tokens.min(rate.burst), at: now, rate }
    }
}

impl<K: Hash + Eq> Buckets<K> {
    /// How long until `key`'s bucket holds `n` tokens (zero when it does now).
    pub fn wait(&self, key: &K, n: f64, rate: Rate) -> Duration {
        let buckets = self.buckets.lock().expect("buckets lock");
        let tokens = buckets.get(key).map_or(rate.burst, |bucket| bucket.filled(Instant::now(), rate).tokens);
        Duration::from_secs_f64(((n - tokens) / rate.per_second).max(0.0))
    }

    /// Takes `n` tokens from `key`'s bucket when it holds them; else answers how long until it
    /// will.
    pub fn try_take(&self, key: K, n: f64, rate: Rate) -> Result<(), Duration> {
        self.change(key, rate, |bucket| {
            if bucket.tokens < n {
                return Err(Duration::from_secs_f64((n - bucket.tokens) / rate.per_second));
            }
            bucket.tokens -= n;
            Ok(())
        })
    }

    /// Takes `n` tokens from `key`'s bucket, held or not (it may go below empty).
    pub fn take(&self, key: K, n: f64, rate: Rate) {
        self.change(key, rate, |bucket| {
            bucket.tokens -= n;
        })
    }

    fn change<T>(&self, key: K, rate: Rate, change: impl FnOnce(&mut Bucket) -> T) -> T {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("buckets lock");
        if buckets.len() >= TRACKED {
            buckets.retain(|_, bucket| bucket.filled(now, rate).tokens < rate.burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket::full(now, rate));
        *bucket = bucket.filled(now, rate);
        change(bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_limit_holds_at_once() {
        let buckets: Buckets<&str> = Buckets::default();
        let slow = Rate { per_second: 2.0, burst: 2.0 };
        assert!(buckets.try_take("t", 2.0, slow).is_ok());
        assert!(buckets.try_take("t", 1.0, slow).is_err(), "drained");
        let raised = Rate { per_second: 1000.0, burst: 1000.0 };
        for _ in 0..5 {
            assert!(buckets.try_take("t", 1.0, raised).is_ok(), "the raised limit's burst, at once");
        }
        let lowered = Rate { per_second: 1.0, burst: 1.0 };
        assert!(buckets.try_take("t", 1.0, lowered).is_ok());
        assert!(buckets.try_take("t", 1.0, lowered).is_err(), "the lowered limit holds at once");
    }
}
