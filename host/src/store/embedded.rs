//! The embedded backend: sled, in the data folder's `db` folder.

use std::any::Any;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};

use super::backend::{Backend, Bytes, EntryIter, Fence, Keyspace, Membership, TxError, TxKeyspace, TxResult};
use super::{StoreError, StoreResult};

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<UnabortableTransactionError> for TxError {
    fn from(e: UnabortableTransactionError) -> Self {
        match e {
            UnabortableTransactionError::Conflict => TxError::Conflict,
            UnabortableTransactionError::Storage(e) => TxError::Abort(e.into()),
        }
    }
}

pub struct Sled(sled::Db);

impl Sled {
    /// Opens (or creates) the database in `dir`, with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> StoreResult<Self> {
        Ok(Sled(sled::Config::new().path(dir.join("db")).cache_capacity(cache_bytes).open()?))
    }
}

struct Tree {
    tree: sled::Tree,
    name: String,
}

fn entries(iter: sled::Iter) -> EntryIter {
    Box::new(iter.map(|entry| entry.map(|(key, value)| (key.to_vec(), value.to_vec())).map_err(Into::into)))
}

fn owned(value: Option<sled::IVec>) -> Option<Bytes> {
    value.map(|value| value.to_vec())
}

impl Keyspace for Tree {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &[u8]) -> StoreResult<Option<Bytes>> {
        Ok(owned(self.tree.get(key)?))
    }

    fn is_empty(&self) -> StoreResult<bool> {
        Ok(self.tree.is_empty())
    }

    fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> EntryIter {
        entries(self.tree.range::<&[u8], _>((start, end)))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> EntryIter {
        entries(self.tree.scan_prefix(prefix))
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> StoreResult<Option<Bytes>> {
        Ok(owned(self.tree.insert(key, value)?))
    }

    fn remove(&self, key: &[u8]) -> StoreResult<Option<Bytes>> {
        Ok(owned(self.tree.remove(key)?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl TxKeyspace for TransactionalTree {
    fn get(&self, key: &[u8]) -> TxResult<Option<Bytes>> {
        Ok(owned(TransactionalTree::get(self, key)?))
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> TxResult<()> {
        TransactionalTree::insert(self, key, value)?;
        Ok(())
    }

    fn remove(&self, key: &[u8]) -> TxResult<Option<Bytes>> {
        Ok(owned(TransactionalTree::remove(self, key)?))
    }
}

impl Backend for Sled {
    fn open_tree(&self, name: &str) -> StoreResult<Arc<dyn Keyspace>> {
        Ok(Arc::new(Tree { tree: self.0.open_tree(name)?, name: name.to_string() }))
    }

    fn drop_tree(&self, name: &str) -> StoreResult<()> {
        self.0.drop_tree(name)?;
        Ok(())
    }

    /// One process has the database to itself: it holds every partition, so a fence has
    /// nothing to check.
    fn transaction(
        &self,
        trees: &[&dyn Keyspace],
        _fence: Option<&Fence>,
        body: &dyn Fn(&[&dyn TxKeyspace]) -> TxResult<()>,
    ) -> StoreResult<()> {
        let trees: Vec<&sled::Tree> = trees
            .iter()
            .map(|tree| &tree.as_any().downcast_ref::<Tree>().expect("a tree of this database").tree)
            .collect();
        trees[..]
            .transaction(|views| {
                let views: Vec<&dyn TxKeyspace> = views.iter().map(|view| view as &dyn TxKeyspace).collect();
                body(&views).map_err(|e| match e {
                    TxError::Abort(e) => ConflictableTransactionError::Abort(e),
                    TxError::Conflict => ConflictableTransactionError::Conflict,
                })
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => e.into(),
            })
    }

    fn generate_id(&self) -> StoreResult<u64> {
        Ok(self.0.generate_id()?)
    }

    fn ids_above(&self, past: u64) -> StoreResult<()> {
        while self.0.generate_id()? <= past {}
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        self.0.flush()?;
        Ok(())
    }

    fn membership(&self) -> Option<&dyn Membership> {
        // sled refuses a second process on the folder: this one has it to itself.
        None
    }
}
