//! What a database must offer the store: named trees of bytes in key order, serializable
//! transactions over several trees, fresh numbers and durable writes. Everything else in
//! `store/` (the typed operations per area, their keys, the tallies) is written once against
//! these traits; `embedded.rs` implements them on sled, the embedded default.

use std::any::Any;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

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
    /// Reads `keys` ahead, together, for the `get`s that follow (a backend whose reads are
    /// round trips makes them one; a local one has nothing to gain).
    fn prefetch(&self, keys: &[Bytes]) -> TxResult<()> {
        let _ = keys;
        Ok(())
    }
    fn insert(&self, key: &[u8], value: &[u8]) -> TxResult<()>;
    /// Removes an entry; answers its value.
    fn remove(&self, key: &[u8]) -> TxResult<Option<Bytes>>;
}

/// A database.
pub trait Backend: Send + Sync {
    /// Opens (or creates) the tree `name`.
    fn open_tree(&self, name: &str) -> StoreResult<Arc<dyn Keyspace>>;
    /// Removes the tree `name` and everything in it, if there is one.
    fn drop_tree(&self, name: &str) -> StoreResult<()>;
    /// Runs `body` over `trees` (given to it in the same order) as one serializable
    /// transaction: all of its writes or none, after a crash too. The body runs again after a
    /// conflict, so it must do nothing but read and write through what it is given. Under a
    /// `fence`, it commits only if the node still holds the lease (else `StoreError::Fenced`,
    /// and nothing is written); a database one process has to itself has no leases to check.
    fn transaction(
        &self,
        trees: &[&dyn Keyspace],
        fence: Option<&Fence>,
        body: &dyn Fn(&[&dyn TxKeyspace]) -> TxResult<()>,
    ) -> StoreResult<()>;
    /// A fresh number, larger than every one given before, also across restarts and crashes.
    fn generate_id(&self) -> StoreResult<u64>;
    /// Makes every number given from now on larger than `past` (an installation moved here
    /// keeps its ids unique).
    fn ids_above(&self, past: u64) -> StoreResult<()>;
    /// Makes every write so far durable.
    fn flush(&self) -> StoreResult<()>;
    /// Membership and leases, when several nodes may share the database (none: one process
    /// has it to itself).
    fn membership(&self) -> Option<&dyn Membership>;
}

/// A partition a node holds, and the epoch it was taken at (it moves on each time the
/// partition changes hands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub partition: u16,
    pub epoch: u64,
}

/// The lease a node does a partition's work under: a transaction made under it commits only
/// while the node still holds the partition at that epoch, and the partition cannot change hands
/// while it commits. A node that paused past its lease and resumes writes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub node: String,
    pub lease: Lease,
}

/// A live node and the address it answers at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node: String,
    pub address: String,
}

/// A node as the database knows it.
#[derive(Debug, Clone)]
pub struct Member {
    pub node: String,
    pub address: String,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
    pub leases: Vec<Lease>,
    /// When its oldest lease was last renewed.
    pub renewed_at: Option<Timestamp>,
}

/// What a database shared by several nodes offers them: who is alive, and who holds which
/// partition of the tenants.
pub trait Membership: Send + Sync {
    /// Records `node`'s heartbeat and the address it answers at; answers the nodes whose
    /// heartbeat is younger than `live` (itself among them), in id order.
    fn heartbeat(&self, node: &str, address: &str, live: Duration) -> StoreResult<Vec<Peer>>;
    /// Lets go of the partitions `node` holds that `wanted` does not name, then takes or renews,
    /// for `lease` from now, those of `wanted` that are free, lapsed or its own already;
    /// answers what it holds.
    fn hold(&self, node: &str, wanted: &[u16], lease: Duration) -> StoreResult<Vec<Lease>>;
    /// The nodes seen in the last `within`, with the leases each holds.
    fn members(&self, within: Duration) -> StoreResult<Vec<Member>>;
    /// Calls `wake` whenever a node writes work for a tenant (its id; empty when the work does
    /// not say) into the delivery queue, the timers or the outbox, or notes a change of its
    /// configuration, once the write commits; on a blocking thread, so `wake` may use the store.
    /// Keeps listening across lost connections (what comes meanwhile waits for the workers'
    /// polls and the change feed's).
    fn listen(&self, wake: Wake);
}

/// What `Membership::listen` calls: what was written, and the tenant it is for.
pub type Wake = Box<dyn Fn(Written, &str) + Send + Sync>;

/// Work a node's worker has to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Deliveries,
    Timers,
    Outbox,
}

/// What a write announced: work, or a change of a tenant's configuration (for every node to
/// forget what it caches of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Work(Due),
    Change,
}

impl Written {
    /// What a write to `tree` announces, if anything.
    pub fn of(tree: &str) -> Option<Written> {
        match tree {
            "delivery_queue" => Some(Written::Work(Due::Deliveries)),
            "timers" => Some(Written::Work(Due::Timers)),
            "system_events" => Some(Written::Work(Due::Outbox)),
            "changes" => Some(Written::Change),
            _ => None,
        }
    }
}
