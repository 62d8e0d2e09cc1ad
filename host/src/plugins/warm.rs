//! Instances kept warm between calls.
//!
//! A large guest (a Python interpreter, a JavaScript engine) spends far longer being instantiated
//! and warming up on its first call than on any later call. So a store and its instance are kept
//! after a call that ended cleanly, and handed to the next call with the same key: the same
//! loaded plugin version, the same key-value scope (tenant, plugin, scope key) and the same
//! limits. Calls that share a key can already see each other's state through the key-value
//! store; calls that do not never share an instance, so what a guest keeps in memory between
//! calls never reaches another scope key or another tenant. A call that trapped or ran out of a
//! limit leaves nothing behind.

use std::collections::VecDeque;
use std::sync::Mutex;

use wasmtime::Store;

use super::bindings::{v0_1, v0_2};
use super::sandbox::HostState;
use crate::tenants::PluginLimits;

/// Instances kept at most, over all plugins: each holds a slot of the engine's pool and the
/// memory its guest has touched.
const CAPACITY: usize = 32;

/// A component instance of either world, in any supported WIT version.
pub enum Instance {
    ConditionV0_1(v0_1::condition::Condition),
    TemplateV0_1(v0_1::template::Template),
    ConditionV0_2(v0_2::condition::Condition),
    TemplateV0_2(v0_2::template::Template),
}

/// Which calls may share an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmKey {
    /// The loaded version (`Prepared`'s id).
    pub prepared: u64,
    /// The key-value scope's prefix: tenant, plugin and scope key.
    pub scope: Vec<u8>,
    pub limits: PluginLimits,
}

/// A store with its instance, ready for the next call with the same key.
pub struct Warm {
    pub key: WarmKey,
    pub store: Store<HostState>,
    pub instance: Instance,
}

/// The instances kept, most recently used first.
#[derive(Default)]
pub struct WarmPool {
    kept: Mutex<VecDeque<Warm>>,
}

impl WarmPool {
    /// Takes the instance kept for `key`, if there is one: no other call can use it meanwhile.
    pub fn take(&self, key: &WarmKey) -> Option<Warm> {
        let mut kept = self.kept.lock().expect("warm pool lock");
        let at = kept.iter().position(|warm| warm.key == *key)?;
        kept.remove(at)
    }

    /// Keeps an instance for the next call with its key, dropping the least recently used one
    /// when the pool is full.
    pub fn put(&self, warm: Warm) {
        let evicted = {
            let mut kept = self.kept.lock().expect("warm pool lock");
            kept.push_front(warm);
            if kept.len() > CAPACITY { kept.pop_back() } else { None }
        };
        // Dropping a store resets its memory slot: outside the lock.
        drop(evicted);
    }

    /// Drops every instance of a loaded version that is no longer in use.
    pub fn forget(&self, prepared: u64) {
        let gone: VecDeque<Warm> = {
            let mut kept = self.kept.lock().expect("warm pool lock");
            let (gone, stay) = kept.drain(..).partition(|warm| warm.key.prepared == prepared);
            *kept = stay;
            gone
        };
        drop(gone);
    }
}
