//! What a database must offer the store: named trees of bytes in key order, serializable
//! transactions over several trees, fresh numbers and durable writes. Everything else in
//! `store/` (the typed operations per area, their keys, the tallies) is written once against
//! these traits; `embedded.rs` implements them on sled, the embedded default.

use std::any::Any;
use std::ops::Bound;
use std::sync::Arc;

use super::{StoreError, StoreResult};

/// A key or a value, as read.
pub type Bytes = Vec<u8>;

/// Entries in key order (from either end), read as the caller goes.
pub type EntryIter = Box<dyn DoubleEndedIterator<Item = StoreResult<(Bytes, Bytes)>> + Send>;

/// Why a transaction's body stopped.
#[derive(Debug)]
pub enum TxError {
    /// It failed: the transaction ends with this error and changes nothing.
    Abort(StoreError),
    /// A concurrent transaction got in the way: the body runs again.
    Conflict,
}

/// What a transaction's body (and each read and write in it) returns.
pub type TxResult<T> = Result<T, TxError>;

/// Ends a transaction with `error` (it is not retried).
pub fn abort(error: StoreError) -> TxError {
    TxError::Abort(error)
}

/// One tree outside transactions: every call stands on its own.
pub trait Keyspace: Send + Sync {
    fn name(&self) -> &str;
    fn get(&self, key: &[u8]) -> StoreResult<Option<Bytes>>;
    fn is_empty(&self) -> StoreResult<bool>;
    /// The entries whose keys fall between `start` and `end`.
    fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> EntryIter;
    /// The entries whose keys start with `prefix`.
    fn scan_prefix(&self, prefix: &[u8]) -> EntryIter;
    /// Writes an entry; answers the value it replaced.
    fn insert(&self, key: &[u8], value: &[u8]) -> StoreResult<Option<Bytes>>;
    /// Removes an entry; answers its value.
    fn remove(&self, key: &[u8]) -> StoreResult<Option<Bytes>>;
    /// The backend's own type, for its transactions.
    fn as_any(&self) -> &dyn Any;
}

/// One tree inside a transaction: what it reads is as of the transaction, and what it writes is
/// kept only if the whole transaction commits.
pub trait TxKeyspace {
    fn get(&self, key: &[u8]) -> TxResult<Option<Bytes>>;
    fn insert(&self, key: &[u8], value: &[u8]) -> TxResult<()>;
    /// Removes an entry; answers its value.
    fn remove(&self, key: &[u8]) -> TxResult<Option<Bytes>>;
}

/// A database.
pub trait Backend: Send + Sync {
    /// Opens (or creates) the tree `name`.
    fn open_tree(&self, name: &str) -> StoreResult<Arc<dyn Keyspace>>;
    /// Runs `body` over `trees` (given to it in the same order) as one serializable
    /// transaction: all of its writes or none, after a crash too. The body runs again after a
    /// conflict, so it must do nothing but read and write through what it is given.
    fn transaction(
        &self,
        trees: &[&dyn Keyspace],
        body: &dyn Fn(&[&dyn TxKeyspace]) -> TxResult<()>,
    ) -> StoreResult<()>;
    /// A fresh number, larger than every one given before, also across restarts and crashes.
    fn generate_id(&self) -> StoreResult<u64>;
    /// Makes every number given from now on larger than `past` (an installation moved here
    /// keeps its ids unique).
    fn ids_above(&self, past: u64) -> StoreResult<()>;
    /// Makes every write so far durable.
    fn flush(&self) -> StoreResult<()>;
    /// Makes this process the only server of the database while it lives; refused when another
    /// one is. (Nodes do not share the work yet: two would run every timer and delivery twice.)
    fn serve_alone(&self) -> StoreResult<()>;
}
