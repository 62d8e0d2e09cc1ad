//! A tree of the database that tallies what is written to it, and the transactions over several
//! trees, which tally what they wrote once they commit. The tallies are the records and bytes
//! written per tree since the store opened, exported at `/metrics`: what an event or a webhook
//! costs on disk.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sled::transaction::TransactionalTree;
use sled::{IVec, Transactional};

use super::{StoreError, StoreResult, TxResult};

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

/// A tree whose writes are tallied. Reads go to sled's tree as they are.
#[derive(Clone, Debug)]
pub(super) struct Tree {
    inner: sled::Tree,
    tally: Arc<Tally>,
}

impl std::ops::Deref for Tree {
    type Target = sled::Tree;
    fn deref(&self) -> &sled::Tree {
        &self.inner
    }
}

impl Tree {
    pub fn open(db: &sled::Db, name: &str) -> sled::Result<Self> {
        Ok(Tree { inner: db.open_tree(name)?, tally: Arc::default() })
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> sled::Result<Option<IVec>> {
        let (key, value) = (key.as_ref(), value.into());
        self.tally.add((1, (key.len() + value.len()) as u64));
        self.inner.insert(key, value)
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> sled::Result<Option<IVec>> {
        let key = key.as_ref();
        self.tally.add((1, key.len() as u64));
        self.inner.remove(key)
    }
}

/// One tree inside a transaction: its writes are tallied when the transaction commits.
pub(super) struct TxTree<'a> {
    tree: &'a TransactionalTree,
    written: Cell<(u64, u64)>,
}

impl TxTree<'_> {
    fn add(&self, bytes: usize) {
        let (records, total) = self.written.get();
        self.written.set((records + 1, total + bytes as u64));
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> TxResult<Option<IVec>> {
        Ok(self.tree.get(key)?)
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> TxResult<Option<IVec>> {
        let (key, value) = (key.as_ref(), value.into());
        self.add(key.len() + value.len());
        Ok(self.tree.insert(key, value)?)
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> TxResult<Option<IVec>> {
        let key = key.as_ref();
        self.add(key.len());
        Ok(self.tree.remove(key)?)
    }

    /// Removes every key of `keys` (gathered before the transaction, with `removal`).
    pub fn remove_all(&self, keys: &[IVec]) -> TxResult<()> {
        keys.iter().try_for_each(|key| self.remove(key).map(drop))
    }
}

/// Runs `body` as one serializable transaction over `trees` (it gets them in the same order);
/// it is run again when a concurrent transaction conflicts, so it must do nothing but read and
/// write through them.
pub(super) fn transaction<T>(trees: &[&Tree], body: impl Fn(&[TxTree]) -> TxResult<T>) -> StoreResult<T> {
    let inner: Vec<&sled::Tree> = trees.iter().map(|tree| &tree.inner).collect();
    let (out, written) = inner[..]
        .transaction(|views| {
            let views: Vec<TxTree> = views.iter().map(|tree| TxTree { tree, written: Cell::default() }).collect();
            let out = body(&views)?;
            Ok((out, views.iter().map(|view| view.written.get()).collect::<Vec<_>>()))
        })
        .map_err(StoreError::from)?;
    for (tree, written) in trees.iter().zip(written) {
        tree.tally.add(written);
    }
    Ok(out)
}

/// The keys of every entry whose key starts with `prefix`, for a transaction to remove.
pub(super) fn removal(tree: &Tree, prefix: &[u8]) -> StoreResult<Vec<IVec>> {
    Ok(tree.scan_prefix(prefix).keys().collect::<Result<_, _>>()?)
}
