//! A tree of the store's backend that tallies what is written to it, and the transactions over
//! several trees, which tally what they wrote once they commit. The tallies are the records and
//! bytes written per tree since the store opened, exported at `/metrics`: what an event or a
//! webhook costs on disk.

use std::cell::{Cell, RefCell};
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::StoreResult;
use super::backend::{Backend, Bytes, EntryIter, Fence, Keyspace, TxKeyspace, TxResult};

/// Writes to one tree: entries written or removed, and the bytes of their keys and values.
#[derive(Debug, Default)]
pub struct Tally {
    records: AtomicU64,
    bytes: AtomicU64,
}

impl Tally {
    fn add(&self, (records, bytes): (u64, u64)) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records and bytes written so far.
    pub fn get(&self) -> (u64, u64) {
        (self.records.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }
}

/// What every write of a store passes, shared by its trees: a write holds it open (shared) while
/// it is made, and a snapshot closes it (exclusively) while it reads, so it reads what the
/// database held at one instant.
pub(super) type Gate = Arc<RwLock<()>>;

/// A tree of the backend: entries of bytes in key order. Its writes are tallied.
#[derive(Clone)]
pub(super) struct Tree {
    space: Arc<dyn Keyspace>,
    backend: Arc<dyn Backend>,
    tally: Arc<Tally>,
    gate: Gate,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tree").field(&self.space.name()).finish()
    }
}

/// Entries of a tree in key order (from either end), read as the caller goes.
pub(super) struct Entries(EntryIter);

impl Iterator for Entries {
    type Item = StoreResult<(Bytes, Bytes)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl DoubleEndedIterator for Entries {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

impl Entries {
    /// The keys alone.
    pub fn keys(self) -> impl DoubleEndedIterator<Item = StoreResult<Bytes>> {
        self.map(|entry| entry.map(|(key, _)| key))
    }
}

impl Tree {
    pub fn open(backend: &Arc<dyn Backend>, name: &str, gate: &Gate) -> StoreResult<Self> {
        Ok(Tree {
            space: backend.open_tree(name)?,
            backend: backend.clone(),
            tally: Arc::default(),
            gate: gate.clone(),
        })
    }

    pub fn name(&self) -> &str {
        self.space.name()
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> StoreResult<Option<Bytes>> {
        self.space.get(key.as_ref())
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> StoreResult<bool> {
        Ok(self.get(key)?.is_some())
    }

    pub fn is_empty(&self) -> StoreResult<bool> {
        self.space.is_empty()
    }

    pub fn iter(&self) -> Entries {
        Entries(self.space.range(Bound::Unbounded, Bound::Unbounded))
    }

    /// The entries whose keys start with `prefix`.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Entries {
        Entries(self.space.scan_prefix(prefix.as_ref()))
    }

    /// The entries whose keys fall in `range`.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Entries {
        fn bytes<K: AsRef<[u8]>>(bound: Bound<&K>) -> Bound<&[u8]> {
            bound.map(|key| key.as_ref())
        }
        Entries(self.space.range(bytes(range.start_bound()), bytes(range.end_bound())))
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> StoreResult<Option<Bytes>> {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.tally.add((1, (key.len() + value.len()) as u64));
        let _open = pass(&self.gate);
        self.space.insert(key, value)
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> StoreResult<Option<Bytes>> {
        let key = key.as_ref();
        self.tally.add((1, key.len() as u64));
        let _open = pass(&self.gate);
        self.space.remove(key)
    }
}

/// Holds `gate` open for a write (a poisoned gate guards nothing: `()`).
fn pass(gate: &Gate) -> std::sync::RwLockReadGuard<'_, ()> {
    gate.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Holds every write of the store whose trees share `gate` until the guard drops.
pub(super) fn close(gate: &Gate) -> std::sync::RwLockWriteGuard<'_, ()> {
    gate.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One tree inside a transaction: its writes are tallied when the transaction commits.
pub(super) struct TxTree<'a> {
    tree: &'a dyn TxKeyspace,
    written: Cell<(u64, u64)>,
}

impl TxTree<'_> {
    fn add(&self, bytes: usize) {
        let (records, total) = self.written.get();
        self.written.set((records + 1, total + bytes as u64));
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> TxResult<Option<Bytes>> {
        self.tree.get(key.as_ref())
    }

    /// Reads `keys` ahead, together, for the `get`s that follow.
    pub fn prefetch(&self, keys: &[Bytes]) -> TxResult<()> {
        self.tree.prefetch(keys)
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> TxResult<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.add(key.len() + value.len());
        self.tree.insert(key, value)
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> TxResult<Option<Bytes>> {
        let key = key.as_ref();
        self.add(key.len());
        self.tree.remove(key)
    }

    /// Removes every key of `keys` (gathered before the transaction, with `removal`).
    pub fn remove_all(&self, keys: &[Bytes]) -> TxResult<()> {
        keys.iter().try_for_each(|key| self.remove(key).map(drop))
    }
}

/// Runs `body` as one serializable transaction over `trees`, all of one backend (it gets them in
/// the same order); it is run again when a concurrent transaction conflicts, so it must do
/// nothing but read and write through them.
pub(super) fn transaction<T>(trees: &[&Tree], body: impl Fn(&[TxTree]) -> TxResult<T>) -> StoreResult<T> {
    transaction_under(trees, None, body)
}

/// `transaction`, committed only while `fence`'s lease holds.
pub(super) fn transaction_under<T>(
    trees: &[&Tree],
    fence: Option<&Fence>,
    body: impl Fn(&[TxTree]) -> TxResult<T>,
) -> StoreResult<T> {
    let spaces: Vec<&dyn Keyspace> = trees.iter().map(|tree| &*tree.space).collect();
    let outcome = RefCell::new(None);
    let open = pass(&trees[0].gate);
    trees[0].backend.transaction(&spaces, fence, &|views| {
        let views: Vec<TxTree> = views.iter().map(|&tree| TxTree { tree, written: Cell::default() }).collect();
        let out = body(&views)?;
        *outcome.borrow_mut() = Some((out, views.iter().map(|view| view.written.get()).collect::<Vec<_>>()));
        Ok(())
    })?;
    drop(open);
    let (out, written) = outcome.into_inner().expect("a committed transaction ran its body");
    for (tree, written) in trees.iter().zip(written) {
        tree.tally.add(written);
    }
    Ok(out)
}

/// The keys of every entry whose key starts with `prefix`, for a transaction to remove.
pub(super) fn removal(tree: &Tree, prefix: &[u8]) -> StoreResult<Vec<Bytes>> {
    tree.scan_prefix(prefix).keys().collect()
}

/// Removes every entry of `tree` from `start` up to `end` in one transaction; answers how many.
pub(super) fn remove_range(tree: &Tree, start: &[u8], end: &[u8]) -> StoreResult<usize> {
    let old: Vec<Bytes> = tree.range(start..end).keys().collect::<StoreResult<_>>()?;
    transaction(&[tree], |t| t[0].remove_all(&old))?;
    Ok(old.len())
}
