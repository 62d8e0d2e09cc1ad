//! A tree of the database that tallies what is written to it, and the transactions over several
//! trees, which tally what they wrote once they commit. The tallies are the records and bytes
//! written per tree since the store opened, exported at `/metrics`: what an event or a webhook
//! costs on disk.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError, TransactionalTree,
};
use sled::{IVec, Transactional};

use super::{StoreError, StoreResult};

/// What a transaction's body returns: `abort` ends it with an error; conflicts retry it.
pub type TxResult<T> = ConflictableTransactionResult<T, StoreError>;

/// Ends a transaction with `error` (it is not retried).
pub fn abort(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

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

/// Bytes as the database hands them out (a key or a value), without a copy.
pub(super) type Bytes = IVec;

/// A tree of the database: entries of bytes in key order. Its writes are tallied.
#[derive(Clone, Debug)]
pub(super) struct Tree {
    inner: sled::Tree,
    tally: Arc<Tally>,
}

/// Entries of a tree in key order (from either end), read as the caller goes.
pub(super) struct Entries(sled::Iter);

impl Iterator for Entries {
    type Item = StoreResult<(Bytes, Bytes)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|entry| entry.map_err(Into::into))
    }
}

impl DoubleEndedIterator for Entries {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|entry| entry.map_err(Into::into))
    }
}

impl Entries {
    /// The keys alone.
    pub fn keys(self) -> impl DoubleEndedIterator<Item = StoreResult<Bytes>> {
        self.map(|entry| entry.map(|(key, _)| key))
    }
}

impl Tree {
    pub fn open(db: &sled::Db, name: &str) -> sled::Result<Self> {
        Ok(Tree { inner: db.open_tree(name)?, tally: Arc::default() })
    }

    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.inner.name()).into_owned()
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> StoreResult<Option<Bytes>> {
        Ok(self.inner.get(key)?)
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> StoreResult<bool> {
        Ok(self.inner.contains_key(key)?)
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> StoreResult<Option<(Bytes, Bytes)>> {
        Ok(self.inner.first()?)
    }

    pub fn iter(&self) -> Entries {
        Entries(self.inner.iter())
    }

    /// The entries whose keys start with `prefix`.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Entries {
        Entries(self.inner.scan_prefix(prefix))
    }

    /// The entries whose keys fall in `range`.
    pub fn range<K: AsRef<[u8]>, R: std::ops::RangeBounds<K>>(&self, range: R) -> Entries {
        Entries(self.inner.range(range))
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> StoreResult<Option<Bytes>> {
        let (key, value) = (key.as_ref(), value.into());
        self.tally.add((1, (key.len() + value.len()) as u64));
        Ok(self.inner.insert(key, value)?)
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> StoreResult<Option<Bytes>> {
        let key = key.as_ref();
        self.tally.add((1, key.len() as u64));
        Ok(self.inner.remove(key)?)
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

    pub fn get(&self, key: impl AsRef<[u8]>) -> TxResult<Option<Bytes>> {
        Ok(self.tree.get(key)?)
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> TxResult<Option<Bytes>> {
        let (key, value) = (key.as_ref(), value.into());
        self.add(key.len() + value.len());
        Ok(self.tree.insert(key, value)?)
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> TxResult<Option<Bytes>> {
        let key = key.as_ref();
        self.add(key.len());
        Ok(self.tree.remove(key)?)
    }

    /// Removes every key of `keys` (gathered before the transaction, with `removal`).
    pub fn remove_all(&self, keys: &[Bytes]) -> TxResult<()> {
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
pub(super) fn removal(tree: &Tree, prefix: &[u8]) -> StoreResult<Vec<Bytes>> {
    tree.scan_prefix(prefix).keys().collect()
}
