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

use super::bindings::{v0_1, v0_2, v0_3};
use super::sandbox::HostState;
use crate::tenants::PluginLimits;

/// Instances kept at most, over all plugins: each holds a slot of the engine's pool. What they
/// may hold in linear memory together is the pool's byte budget.
const CAPACITY: usize = 32;

/// A component instance of either world, in any supported WIT version.
pub enum Instance {
    ConditionV0_1(v0_1::condition::Condition),
    TemplateV0_1(v0_1::template::Template),
    ConditionV0_2(v0_2::condition::Condition),
    TemplateV0_2(v0_2::template::Template),
    ConditionV0_3(v0_3::condition::Condition),
    TemplateV0_3(v0_3::template::Template),
    ChannelV0_3(v0_3::channel::Channel),
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

/// The instances kept, most recently used first, within a count and a byte budget.
pub struct WarmPool {
    budget: u64,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    instances: VecDeque<Warm>,
    /// The linear memory of `instances`, all together.
    bytes: u64,
}

fn bytes_of(warm: &Warm) -> u64 {
    warm.store.data().memory_bytes()
}

impl WarmPool {
    /// A pool whose instances hold at most `budget` bytes of linear memory together.
    pub fn new(budget: u64) -> Self {
        WarmPool { budget, kept: Mutex::default() }
    }

    /// Takes the instance kept for `key`, if there is one: no other call can use it meanwhile.
    pub fn take(&self, key: &WarmKey) -> Option<Warm> {
        let mut kept = self.kept.lock().expect("warm pool lock");
        let at = kept.instances.iter().position(|warm| warm.key == *key)?;
        let warm = kept.instances.remove(at)?;
        kept.bytes -= bytes_of(&warm);
        Some(warm)
    }

    /// Keeps an instance for the next call with its key, dropping the least recently used ones
    /// while the pool is over its count or its bytes; one larger than the whole budget is not
    /// kept.
    pub fn put(&self, warm: Warm) {
        if bytes_of(&warm) > self.budget {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut kept = self.kept.lock().expect("warm pool lock");
            kept.bytes += bytes_of(&warm);
            kept.instances.push_front(warm);
            while kept.instances.len() > CAPACITY || kept.bytes > self.budget {
                let Some(oldest) = kept.instances.pop_back() else { break };
                kept.bytes -= bytes_of(&oldest);
                evicted.push(oldest);
            }
        }
        // Dropping a store resets its memory slot: outside the lock.
        drop(evicted);
    }

    /// Drops every instance of a loaded version that is no longer in use.
    pub fn forget(&self, prepared: u64) {
        let gone: VecDeque<Warm> = {
            let mut kept = self.kept.lock().expect("warm pool lock");
            let (gone, stay): (VecDeque<Warm>, VecDeque<Warm>) =
                kept.instances.drain(..).partition(|warm| warm.key.prepared == prepared);
            kept.bytes = stay.iter().map(bytes_of).sum();
            kept.instances = stay;
            gone
        };
        drop(gone);
    }
}
