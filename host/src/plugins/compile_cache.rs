//! Cranelift's incremental cache, kept in the store within a byte budget. An entry is keyed by a hash
//! of a function's code and the compiler's settings, so a stale entry is never found; its value
//! is stamped with when it was last used, and past the budget the least recently used go first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::Blobs;

/// The bytes of the last-used stamp (Unix seconds, big-endian) before each compiled function.
const STAMP: usize = 8;
/// A hit rewrites its stamp at most this often, so reading the cache seldom writes to it.
const RESTAMP_SECS: u64 = 3600;

#[derive(Debug)]
pub struct CompileCache {
    tree: Blobs,
    budget: u64,
    /// What the entries take (keys and values), as last counted and added to since.
    bytes: AtomicU64,
    pruning: AtomicBool,
}

impl CompileCache {
    /// The cache kept in `tree` within `budget` bytes. It is pruned to fit in the background
    /// (reading every entry of a full cache takes a while), and whenever an upload fills it.
    pub fn open(tree: Blobs, budget: u64) -> Arc<CompileCache> {
        let cache = Arc::new(CompileCache { tree, budget, bytes: AtomicU64::new(0), pruning: AtomicBool::new(true) });
        let pruner = cache.clone();
        std::thread::spawn(move || {
            pruner.prune(budget);
            pruner.pruning.store(false, Ordering::Release);
        });
        cache
    }

    fn get_at(&self, key: &[u8], now: u64) -> Option<Vec<u8>> {
        let value = self.tree.get(key).ok()??;
        let last_used = last_used(&value)?;
        let code = &value[STAMP..];
        if now.saturating_sub(last_used) >= RESTAMP_SECS {
            // A lost restamp only makes the entry look older than it is.
            let _ = self.tree.insert(key, stamped(now, code));
        }
        Some(code.to_vec())
    }

    fn insert_at(&self, key: &[u8], code: &[u8], now: u64) -> bool {
        let Ok(previous) = self.tree.insert(key, stamped(now, code)) else { return false };
        let added = (key.len() + STAMP + code.len()) as u64;
        let replaced = previous.map_or(0, |p| (key.len() + p.len()) as u64);
        let count = |bytes: u64| (bytes + added).saturating_sub(replaced);
        let bytes = count(
            self.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(count(b))).expect("always Some"),
        );
        // Over the budget: make room for a tenth more, so the next inserts do not prune again.
        if bytes > self.budget && !self.pruning.swap(true, Ordering::Acquire) {
            self.prune(self.budget / 10 * 9);
            self.pruning.store(false, Ordering::Release);
        }
        true
    }

    /// Removes the least recently used entries until the rest fit in `target` bytes; answers
    /// how many went.
    fn prune(&self, target: u64) -> usize {
        let mut entries: Vec<(u64, Vec<u8>, u64)> = self
            .tree
            .entries()
            .map(|(key, value)| {
                let size = (key.len() + value.len()) as u64;
                (last_used(&value).unwrap_or(0), key, size)
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(.., size)| size).sum();
        entries.sort_unstable_by_key(|(stamp, ..)| *stamp);
        let mut removed = 0;
        for (_, key, size) in entries {
            if total <= target {
                break;
            }
            if self.tree.remove(&key).is_ok() {
                total -= size;
                removed += 1;
            }
        }
        self.bytes.store(total, Ordering::Relaxed);
        if removed > 0 {
            tracing::info!(removed, kept_bytes = total, budget = self.budget, "compile cache pruned");
        }
        removed
    }
}

impl wasmtime::CacheStore for CompileCache {
    fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.get_at(key, unix_now()).map(std::borrow::Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        self.insert_at(key, &value, unix_now())
    }
}

/// When a stored value was last used; `None` for one too short to carry the stamp.
fn last_used(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.get(..STAMP)?.try_into().expect("STAMP bytes")))
}

fn stamped(now: u64, code: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(STAMP + code.len());
    value.extend_from_slice(&now.to_be_bytes());
    value.extend_from_slice(code);
    value
}

/// Wall time: only the order of uses matters here, not the server's (possibly manual) clock.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache once its opening prune is done.
    fn opened(tree: Blobs, budget: u64) -> Arc<CompileCache> {
        let cache = CompileCache::open(tree, budget);
        while cache.pruning.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        cache
    }

    /// A store's cache, with the folder that holds it.
    fn tree() -> (tempfile::TempDir, Blobs) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path(), 1 << 20).unwrap();
        (dir, store.compiled_functions())
    }

    /// An entry of 100 bytes in all (key of 4, stamp, code of 88).
    fn code(n: u8) -> Vec<u8> {
        vec![n; 88]
    }

    #[test]
    fn a_function_reads_back_as_stored_and_a_miss_is_none() {
        let (_dir, tree) = tree();
        let cache = opened(tree, 1 << 20);
        assert!(cache.insert_at(b"fn_1", &code(1), 1000));
        assert_eq!(cache.get_at(b"fn_1", 1000), Some(code(1)));
        assert_eq!(cache.get_at(b"fn_2", 1000), None);
    }

    #[test]
    fn past_its_budget_the_least_recently_used_go_first() {
        // Room for 10 entries; 10 stored an hour apart, the oldest read again just now.
        let (_dir, tree) = tree();
        let cache = opened(tree, 1000);
        for n in 0..10u8 {
            cache.insert_at(&[b'f', b'n', b'_', n], &code(n), u64::from(n) * RESTAMP_SECS);
        }
        assert_eq!(cache.get_at(b"fn_\x00", 20 * RESTAMP_SECS), Some(code(0)));
        // The 11th goes over: the cache keeps 90% of its budget, the most recently used.
        cache.insert_at(b"fn_\x0a", &code(10), 21 * RESTAMP_SECS);
        let kept: Vec<u8> = cache.tree.entries().map(|(key, _)| key[3]).collect();
        assert_eq!(kept, [0, 3, 4, 5, 6, 7, 8, 9, 10], "the ones not used for longest went");
        assert_eq!(cache.bytes.load(Ordering::Relaxed), 900);
    }

    #[test]
    fn a_cache_over_a_smaller_budget_is_pruned_once_opened() {
        let (_dir, tree) = tree();
        let cache = opened(tree.clone(), 1 << 20);
        for n in 0..10u8 {
            cache.insert_at(&[b'f', b'n', b'_', n], &code(n), u64::from(n));
        }
        let reopened = opened(tree, 500);
        let kept: Vec<u8> = reopened.tree.entries().map(|(key, _)| key[3]).collect();
        assert_eq!(kept, [5, 6, 7, 8, 9]);
        assert_eq!(reopened.bytes.load(Ordering::Relaxed), 500);
    }
}
