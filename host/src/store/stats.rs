//! The per-tenant, per-minute counts behind `GET /v1/stats` (`records::stats::Minute`). What
//! happens is tallied in memory (by a transaction once it commits, or directly) and added to
//! the `stats` tree by `flush_stats`, every few seconds and before each read: the counts cost
//! the write path a map update, not a write. Each process adds only to its own entries (the
//! key ends with its `writer` number), so nodes never contend; a read adds them up. A crash
//! loses what was tallied since the last flush.

use std::collections::HashMap;

use jiff::Timestamp;

use super::tree::remove_range;
use super::{Store, StoreResult, decode, keys, transaction};
use crate::records::stats::Minute;

/// How long the counts are kept: the longest range `GET /v1/stats` answers.
pub const KEPT: jiff::SignedDuration = jiff::SignedDuration::from_hours(31 * 24);

/// Counts waiting for the next flush, by tenant and minute.
pub(super) type Tallies = HashMap<(String, i64), Minute>;

/// The minute `at` falls in, in minutes since the epoch.
pub fn minute_of(at: Timestamp) -> i64 {
    at.as_second().div_euclid(60)
}

/// Adds `f`'s counts to the tenant's minute of `at` in `tallies`.
pub(super) fn tally_in(tallies: &mut Tallies, tenant: &str, at: Timestamp, f: impl FnOnce(&mut Minute)) {
    f(tallies.entry((tenant.to_string(), minute_of(at))).or_default());
}

impl Store {
    /// Counts something that happened to `tenant` at `at` (added at the next flush).
    pub fn tally(&self, tenant: &str, at: Timestamp, f: impl FnOnce(&mut Minute)) {
        tally_in(&mut self.tallies.lock().expect("tallies lock"), tenant, at, f);
    }

    /// Adds a committed transaction's tallies to those waiting.
    pub(super) fn note_tallies(&self, tallies: Tallies) {
        if tallies.is_empty() {
            return;
        }
        let mut waiting = self.tallies.lock().expect("tallies lock");
        for (key, minute) in tallies {
            waiting.entry(key).or_default().add(&minute);
        }
    }

    /// Adds the waiting tallies to this process's entries in the tree.
    pub fn flush_stats(&self) -> StoreResult<()> {
        let _turn = self.stats_turn.lock().expect("stats turn lock");
        let waiting = std::mem::take(&mut *self.tallies.lock().expect("tallies lock"));
        if waiting.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::with_capacity(waiting.len());
        for ((tenant, minute), counted) in waiting {
            let key = keys::stats(&tenant, minute, self.writer);
            let mut sum: Minute = match self.stats.get(&key)? {
                Some(bytes) => decode("stats", &bytes)?,
                None => Minute::default(),
            };
            sum.add(&counted);
            entries.push((key, serde_json::to_vec(&sum).expect("JSON")));
        }
        transaction(&[&self.stats], |t| entries.iter().try_for_each(|(key, value)| t[0].insert(key, value)))
    }

    /// `tenant`'s counts for each minute from `from` up to `until` (minutes since the epoch),
    /// added over the processes that counted them, in time order; minutes with nothing counted
    /// are absent.
    pub fn stats_between(&self, tenant: &str, from: i64, until: i64) -> StoreResult<Vec<(i64, Minute)>> {
        let skip = tenant.len() + 1;
        let mut minutes: Vec<(i64, Minute)> = Vec::new();
        for entry in self.stats.range(keys::stats(tenant, from, 0)..keys::stats(tenant, until, 0)) {
            let (key, bytes) = entry?;
            let minute = keys::stats_minute(&key, skip).ok_or_else(|| super::corrupt(&key, "stats key"))?;
            let counted: Minute = decode("stats", &bytes)?;
            match minutes.last_mut() {
                Some((last, sum)) if *last == minute => sum.add(&counted),
                _ => minutes.push((minute, counted)),
            }
        }
        Ok(minutes)
    }

    /// Removes `tenant`'s counts of minutes before `cutoff`; answers how many entries.
    pub fn prune_stats(&self, tenant: &str, cutoff: Timestamp) -> StoreResult<usize> {
        remove_range(&self.stats, &keys::named(tenant, ""), &keys::stats(tenant, minute_of(cutoff), 0))
    }
}
