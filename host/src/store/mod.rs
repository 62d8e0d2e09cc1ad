//! Durable storage: a database with a tree per kind of record, reached through the traits of
//! `backend` (sled, in `embedded`, is the default). Records are JSON, except plugin binaries and
//! key-value entries, which are raw bytes.

mod alerts;
mod audit;
mod backend;
mod changes;
mod check;
mod cohorts;
#[cfg(test)]
mod conformance;
mod copy;
mod customers;
mod deliveries;
mod embedded;
mod erase;
mod events;
mod format;
pub mod group;
mod incidents;
mod keys;
mod notifications;
pub mod plugins;
mod postgres;
mod queues;
mod records;
mod snapshot;
pub mod stats;
mod status_pages;
mod timers;
mod tree;
mod tx;
mod usage;

pub use backend::{Bytes, Due, Fence, Lease, Member, Membership, Peer, TxResult, Written, abort};
pub use changes::Change;
pub use check::Checked;
pub use copy::Copied;
pub use deliveries::{DeliveryWrite, QueueEntry, Stage};
pub use format::FORMAT;
pub use plugins::{Blobs, KvScope};
pub use queues::Outboxed;
pub use records::{Collection, Table};
pub use snapshot::Taken;
pub use timers::Timer;
pub use tx::Tx;
pub use usage::Kept;

use backend::Backend;
use tree::{Gate, Tree, removal, transaction};

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Backend(String),
    /// The error of a transaction or flush shared with other requests (told to each of them).
    #[error("storage error: {0}")]
    Shared(String),
    /// An operation the store's state does not allow.
    #[error("{0}")]
    Refused(String),
    /// The node no longer holds the partition whose work it was writing: nothing was written.
    #[error("partition {partition} is no longer this node's (held at epoch {epoch}): its write was refused")]
    Fenced { partition: u16, epoch: u64 },
    #[error("stored record {key:?} cannot be read: {source}")]
    Corrupt { key: String, source: serde_json::Error },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database and its trees, cheap to clone.
#[derive(Clone)]
pub struct Store(Arc<Trees>);

impl std::ops::Deref for Store {
    type Target = Trees;
    fn deref(&self) -> &Trees {
        &self.0
    }
}

pub struct Trees {
    db: Arc<dyn Backend>,
    /// The data folder; the database is its `db` folder.
    pub dir: std::path::PathBuf,
    /// Every tree above, in the order opened (for the tallies of what each wrote).
    every_tree: Vec<Tree>,
    /// Callers waiting for a flush: one flush covers all who asked before it began.
    flushes: group::Group<(), ()>,
    /// Delivery queue entries written since the delivery worker last took them.
    queued: Mutex<Queued>,
    /// Counts waiting for the next `flush_stats`, and one flush at a time.
    tallies: Mutex<stats::Tallies>,
    stats_turn: Mutex<()>,
    /// This process's number in the `stats` keys: a fresh id, so no other process writes them.
    writer: u64,
    /// tenant id -> `Tenant`
    pub tenants: Table,
    /// key id -> `ApiKey`
    pub api_keys: Table,
    /// SHA-256 of a console session token -> `Session`
    pub sessions: Table,
    /// `tenant/name` -> `Plugin`
    plugins: Tree,
    /// `tenant/name/version` -> `PluginVersion`
    plugin_versions: Tree,
    /// `tenant/name/version` -> the component as uploaded
    plugin_components: Tree,
    /// `tenant/name/` + scope key + key -> bytes a plugin stored
    plugin_kv: Tree,
    /// `tenant/name/` + sequence -> a line a plugin logged (`plugins::logs`)
    plugin_logs: Tree,
    /// Cranelift's cache key -> a compiled function with its last use, shared by all uploads
    /// (`plugins::compile_cache`)
    compiled_functions: Tree,
    /// `tenant/customer id` -> `Customer`
    customers: Tree,
    /// `tenant/event id` -> `Event`; the key is the idempotency check
    events: Tree,
    /// `tenant/rule id` -> `Rule`
    pub rules: Collection,
    /// `tenant\0rule\0scope key` -> an `AlertRecord` and its `Series` of aggregates: where
    /// each alert stands and what its metric was per time bucket
    alerts: Tree,
    /// `tenant\0rule\0` -> how many of the rule's alerts are in each state
    alert_counts: Tree,
    /// `tenant\0rule\0` + time + sequence -> `TransitionRecord`: each alert's history
    transitions: Tree,
    /// `tenant\0notification id` -> `Notification` (ids sort by time): the queue delivery reads
    notifications: Tree,
    /// due time + `tenant\0rule\0scope key` -> the rule's `updated_at`: work for the scheduler
    timers: Tree,
    /// `tenant/channel id` -> `Channel`
    pub channels: Collection,
    /// `tenant\0notification id\0channel id` -> `Delivery`: a notification's way to one
    /// channel, with every attempt
    deliveries: Tree,
    /// due time + a delivery's key -> nothing: attempts waiting for the delivery worker
    delivery_queue: Tree,
    /// `tenant\0` + event time + event id -> the ingest batch (8 bytes): events by time, for
    /// cohort computations and retention
    events_by_time: Tree,
    /// `tenant\0event type` -> `EventTypeStats`: the tenant's event types as seen
    event_types: Tree,
    /// sequence + event id -> a pending system event, until ingest has matched it
    system_events: Tree,
    /// `tenant/cohort id` -> `Cohort`
    pub cohorts: Collection,
    /// `tenant\0cohort\0customer` -> when the customer entered: a cohort's members
    cohort_members: Tree,
    /// `tenant\0rule\0customer` -> a `CohortChange` waiting for the rule's next batch
    cohort_batches: Tree,
    /// `tenant/incident id` -> `Incident` (ids sort by time), with its timeline
    pub incidents: Collection,
    /// `tenant\0rule\0scope key` (an alert), `tenant\0channel\0id`, `tenant\0plugin\0name` -> the
    /// id of the incident it opened and that is still open
    open_incidents: Tree,
    /// `tenant\0channel\0batch key` -> the `OpenBatch` collecting held notifications for the
    /// channel (a digest, quiet hours' end, a group), until its notification is rendered
    batches: Tree,
    /// `tenant\0batch notification\0member notification` -> nothing: what a batch collected
    batch_members: Tree,
    /// `tenant/<tenant>` -> the tenant's `StatusPage`; `slug/<slug>` -> the tenant whose page
    /// it is
    status_pages: Tree,
    /// `tenant/recipient id` -> `Recipient`: people, and the groups they belong to
    pub recipients: Collection,
    /// `tenant/name` -> `Category`: the tenant's own categories and edited built-in ones
    pub categories: Collection,
    /// `tenant/subscription id` -> `Subscription`
    pub subscriptions: Collection,
    /// `tenant/silence id` -> `Silence`
    pub silences: Collection,
    /// `tenant/name` -> `Role`: the roles a tenant defined
    pub roles: Collection,
    /// `tenant/name` -> an `Owned<TimeIntervalSpec>`: the tenant's time intervals
    pub time_intervals: Collection,
    /// `tenant/portal` -> `Portal`: the key customer tokens are signed with, the portal's settings
    pub portals: Collection,
    /// time + tenant + node + sequence -> nothing: a change of the tenant's configuration
    /// (`changes`)
    changes: Tree,
    /// `tenant\0` + time + sequence -> an audit entry (`audit`); the platform's under `\0`
    audit: Tree,
    /// `tenant\0events`, `tenant\0customers` -> how many the tenant keeps (8 bytes, `usage`)
    usage: Tree,
    /// `tenant\0` + minute + writer -> the `stats::Minute` one process counted (`stats`)
    stats: Tree,
    /// `format` -> the store format the database holds (`format`)
    meta: Tree,
    /// What every write passes, and a snapshot closes (`snapshot`).
    gate: Gate,
}

/// The most queue entries kept for the delivery worker; past this it reads the whole queue.
const MAX_QUEUED_KEPT: usize = 100_000;

/// Delivery queue entries written since the worker last took them.
#[derive(Default)]
struct Queued {
    entries: Vec<QueueEntry>,
    /// More were written than kept.
    overflowed: bool,
}

impl Store {
    /// Opens (or creates) the embedded database in `dir`, with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> StoreResult<Self> {
        Self::on(Arc::new(embedded::Sled::open(dir, cache_bytes)?), dir)
    }

    /// Connects to the PostgreSQL database at `url` with at most `pool` connections, bringing
    /// its schema up to date; `dir` keeps what stays on this machine (compiled plugins).
    pub fn connect(url: &str, pool: usize, dir: &Path) -> StoreResult<Self> {
        Self::on(Arc::new(postgres::Postgres::connect(url, pool)?), dir)
    }

    fn on(db: Arc<dyn Backend>, dir: &Path) -> StoreResult<Self> {
        let store = Self::trees(db, dir)?;
        format::upgrade(&store.db, &store.meta)?;
        Ok(store)
    }

    fn trees(db: Arc<dyn Backend>, dir: &Path) -> StoreResult<Self> {
        let opened = std::cell::RefCell::new(Vec::new());
        let gate = Gate::default();
        let open = |name| {
            let tree = Tree::open(&db, name, &gate)?;
            opened.borrow_mut().push(tree.clone());
            Ok::<_, StoreError>(tree)
        };
        Ok(Store(Arc::new(Trees {
            tenants: Table(open("tenants")?),
            api_keys: Table(open("api_keys")?),
            sessions: Table(open("sessions")?),
            plugins: open("plugins")?,
            plugin_versions: open("plugin_versions")?,
            plugin_components: open("plugin_components")?,
            plugin_kv: open("plugin_kv")?,
            plugin_logs: open("plugin_logs")?,
            compiled_functions: open("compiled_functions")?,
            customers: open("customers")?,
            events: open("events")?,
            rules: Collection(open("rules")?),
            alerts: open("alerts")?,
            alert_counts: open("alert_counts")?,
            transitions: open("transitions")?,
            notifications: open("notifications")?,
            timers: open("timers")?,
            channels: Collection(open("channels")?),
            deliveries: open("deliveries")?,
            delivery_queue: open("delivery_queue")?,
            events_by_time: open("events_by_time")?,
            event_types: open("event_types")?,
            system_events: open("system_events")?,
            cohorts: Collection(open("cohorts")?),
            cohort_members: open("cohort_members")?,
            cohort_batches: open("cohort_batches")?,
            incidents: Collection(open("incidents")?),
            open_incidents: open("open_incidents")?,
            batches: open("batches")?,
            batch_members: open("batch_members")?,
            status_pages: open("status_pages")?,
            recipients: Collection(open("recipients")?),
            categories: Collection(open("categories")?),
            subscriptions: Collection(open("subscriptions")?),
            silences: Collection(open("silences")?),
            roles: Collection(open("roles")?),
            portals: Collection(open("portals")?),
            time_intervals: Collection(open("time_intervals")?),
            changes: open("changes")?,
            audit: open("audit")?,
            usage: open("usage")?,
            stats: open("stats")?,
            meta: open("meta")?,
            every_tree: opened.take(),
            gate: gate.clone(),
            flushes: group::Group::new(|_| 1, usize::MAX),
            queued: Mutex::default(),
            tallies: Mutex::default(),
            stats_turn: Mutex::default(),
            writer: db.generate_id()?,
            dir: dir.to_path_buf(),
            db,
        })))
    }

    /// Tells the delivery worker of queue entries a committed transaction wrote.
    fn note_queued(&self, entries: impl IntoIterator<Item = QueueEntry>) {
        let mut queued = self.queued.lock().expect("queued lock");
        if !queued.overflowed {
            queued.entries.extend(entries);
            if queued.entries.len() > MAX_QUEUED_KEPT {
                *queued = Queued { entries: Vec::new(), overflowed: true };
            }
        }
    }

    /// The trees that hold records: every tree but `meta`, which each database keeps of its own.
    fn records(&self) -> impl Iterator<Item = &Tree> {
        self.every_tree.iter().filter(|tree| tree.name() != "meta")
    }

    /// Entries and bytes written to each tree since the store opened, by tree name.
    pub fn written(&self) -> Vec<(String, (u64, u64))> {
        self.every_tree.iter().map(|tree| (tree.name().to_string(), tree.tally().get())).collect()
    }

    /// A fresh number, larger than every one given before, also across restarts and crashes.
    pub fn generate_id(&self) -> StoreResult<u64> {
        self.db.generate_id()
    }

    /// Membership and leases, when several nodes may share the database.
    pub fn membership(&self) -> Option<&dyn Membership> {
        self.db.membership()
    }

    /// `flush`, for blocking threads.
    pub fn flush_now(&self) -> StoreResult<()> {
        self.db.flush()
    }

    /// Makes every write so far durable, in a flush shared with everyone waiting at the same
    /// time (group commit: one flush at a time, on a blocking thread, covers every caller queued
    /// before it began). Handlers call it before answering a change.
    ///
    /// (Not sled's `flush_async`: it waits on sled's I/O threads while holding sled's lock, and
    /// many at once can fill that pool while the write they wait for queues behind them.)
    pub async fn flush(&self) -> StoreResult<()> {
        let db = self.db.clone();
        self.flushes.submit((), move |round| group::each(round.len(), db.flush())).await
    }
}

/// What follows `prefix` in each key that starts with it, in key order (the ids under it).
fn suffixes(tree: &Tree, prefix: &[u8]) -> StoreResult<Vec<String>> {
    tree.scan_prefix(prefix).keys().map(|key| Ok(String::from_utf8_lossy(&key?[prefix.len()..]).into_owned())).collect()
}

/// The error for a stored value that is not the `what` it should be.
pub fn corrupt(key: impl AsRef<[u8]>, what: &str) -> StoreError {
    let source = serde_json::Error::io(std::io::Error::other(format!("not {what}")));
    StoreError::Corrupt { key: String::from_utf8_lossy(key.as_ref()).into_owned(), source }
}

/// A stored JSON record; `key` names it in the error.
fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt { key: key.to_string(), source })
}
