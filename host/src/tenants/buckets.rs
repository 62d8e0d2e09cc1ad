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

#[derive(Debug, Clone, Copy)]
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
}

impl Bucket {
    fn filled(self, now: Instant, rate: Rate) -> Bucket {
        Bucket {
            tokens: (self.tokens + now.duration_since(self.at).as_secs_f64() * rate.per_second).min(rate.burst),
            at: now,
        }
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
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: rate.burst, at: now });
        *bucket = bucket.filled(now, rate);
        change(bucket)
    }
}
