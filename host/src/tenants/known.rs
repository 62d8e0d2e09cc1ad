//! Keys already checked, kept in memory so that a request does not read its key and tenant from
//! the store again. Only keys that exist are kept (an unknown token costs its lookups every
//! time); deleting a key or a tenant takes its entries out once the store has let it go, before
//! the deletion answers.

use std::collections::HashMap;
use std::sync::Mutex;

use super::TenantKey;

/// A key as it was found: the digest its secret must match, and what it proves.
#[derive(Clone)]
pub struct Known {
    pub secret_sha256: String,
    pub key: TenantKey,
}

#[derive(Default)]
pub struct KnownKeys(Mutex<Entries>);

#[derive(Default)]
struct Entries {
    by_id: HashMap<String, Known>,
    /// Moves on at every removal: a lookup that began before one keeps nothing (it may have read
    /// a key that is gone now).
    removals: u64,
}

impl KnownKeys {
    pub fn get(&self, key_id: &str) -> Option<Known> {
        self.0.lock().expect("known keys lock").by_id.get(key_id).cloned()
    }

    /// Where removals stand, before a lookup in the store.
    pub fn mark(&self) -> u64 {
        self.0.lock().expect("known keys lock").removals
    }

    /// Keeps what a lookup that began at `mark` found, unless something was removed since.
    pub fn keep(&self, mark: u64, known: Known) {
        let mut entries = self.0.lock().expect("known keys lock");
        if entries.removals == mark {
            entries.by_id.insert(known.key.key_id.clone(), known);
        }
    }

    /// Forgets the keys `gone` picks, after they left the store (so a lookup that marks after
    /// this finds them gone there).
    pub fn forget(&self, gone: impl Fn(&TenantKey) -> bool) {
        let mut entries = self.0.lock().expect("known keys lock");
        entries.removals += 1;
        entries.by_id.retain(|_, known| !gone(&known.key));
    }
}
