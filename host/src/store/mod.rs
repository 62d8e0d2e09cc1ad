//! Durable storage: one sled database with a tree per kind of record. Records are JSON, except
//! plugin binaries and key-value entries, which are raw bytes.

mod alerts;
mod cohorts;
#[cfg(test)]
mod conformance;
mod customers;
mod deliveries;
mod erase;
mod events;
pub mod group;
mod incidents;
mod keys;
mod notifications;
pub mod plugins;
mod queues;
mod records;
mod status_pages;
mod timers;
mod tx;

pub use deliveries::{DeliveryWrite, QueueEntry};
pub use plugins::{Blobs, KvScope};
pub use queues::Outboxed;
pub use records::{Collection, Table};
pub use timers::Timer;
pub use tx::{Tx, TxResult, abort};

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use sled::transaction::TransactionError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// The error of a transaction or flush shared with other requests (told to each of them).
    #[error("storage error: {0}")]
    Shared(String),
    #[error("stored record {key:?} cannot be read: {source}")]
    Corrupt { key: String, source: serde_json::Error },
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

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
    db: sled::Db,
    /// The data folder; the database is its `db` folder.
    pub dir: std::path::PathBuf,
    /// Callers waiting for a flush: one flush covers all who asked before it began.
    flushes: group::Group<(), ()>,
    /// Delivery queue entries written since the delivery worker last took them.
    queued: Mutex<Queued>,
    /// tenant id -> `Tenant`
    pub tenants: Table,
    /// key id -> `ApiKey`
    pub api_keys: Table,
    /// SHA-256 of a console session token -> `Session`
    pub sessions: Table,
    /// `tenant/name` -> `Plugin`
    plugins: sled::Tree,
    /// `tenant/name/version` -> `PluginVersion`
    plugin_versions: sled::Tree,
    /// `tenant/name/version` -> the component as uploaded
    plugin_components: sled::Tree,
    /// `tenant/name/` + scope key + key -> bytes a plugin stored
    plugin_kv: sled::Tree,
    /// `tenant/name/` + sequence -> a line a plugin logged (`plugins::logs`)
    plugin_logs: sled::Tree,
    /// Cranelift's cache key -> a compiled function with its last use, shared by all uploads
    /// (`plugins::compile_cache`)
    compiled_functions: sled::Tree,
    /// `tenant/customer id` -> `Customer`
    customers: sled::Tree,
    /// `tenant/event id` -> `Event`; the key is the idempotency check
    events: sled::Tree,
    /// `tenant/rule id` -> `Rule`
    pub rules: Collection,
    /// `tenant\0rule\0scope key` -> an `AlertRecord` and its `Series` of aggregates: where
    /// each alert stands and what its metric was per time bucket
    alerts: sled::Tree,
    /// `tenant\0rule\0` -> how many of the rule's alerts are in each state
    alert_counts: sled::Tree,
    /// `tenant\0rule\0` + time + sequence -> `TransitionRecord`: each alert's history
    transitions: sled::Tree,
    /// `tenant\0notification id` -> `Notification` (ids sort by time): the queue delivery reads
    notifications: sled::Tree,
    /// due time + `tenant\0rule\0scope key` -> the rule's `updated_at`: work for the scheduler
    timers: sled::Tree,
    /// `tenant/channel id` -> `Channel`
    pub channels: Collection,
    /// `tenant\0notification id\0channel id` -> `Delivery`: a notification's way to one
    /// channel, with every attempt
    deliveries: sled::Tree,
    /// due time + a delivery's key -> nothing: attempts waiting for the delivery worker
    delivery_queue: sled::Tree,
    /// `tenant\0` + event time + event id -> the ingest batch (8 bytes): events by time, for
    /// cohort computations and retention
    events_by_time: sled::Tree,
    /// `tenant\0event type` -> `EventTypeStats`: the tenant's event types as seen
    event_types: sled::Tree,
    /// sequence + event id -> a pending system event, until ingest has matched it
    system_events: sled::Tree,
    /// `tenant/cohort id` -> `Cohort`
    pub cohorts: Collection,
    /// `tenant\0cohort\0customer` -> when the customer entered: a cohort's members
    cohort_members: sled::Tree,
    /// `tenant\0rule\0customer` -> a `CohortChange` waiting for the rule's next batch
    cohort_batches: sled::Tree,
    /// `tenant/incident id` -> `Incident` (ids sort by time), with its timeline
    pub incidents: Collection,
    /// `tenant\0rule\0scope key` (an alert), `tenant\0channel\0id`, `tenant\0plugin\0name` -> the
    /// id of the incident it opened and that is still open
    open_incidents: sled::Tree,
    /// `tenant\0channel\0batch key` -> the `OpenBatch` collecting held notifications for the
    /// channel (a digest, quiet hours' end, a group), until its notification is rendered
    batches: sled::Tree,
    /// `tenant\0batch notification\0member notification` -> nothing: what a batch collected
    batch_members: sled::Tree,
    /// `tenant/<tenant>` -> the tenant's `StatusPage`; `slug/<slug>` -> the tenant whose page
    /// it is
    status_pages: sled::Tree,
    /// `tenant/recipient id` -> `Recipient`: people, and the groups they belong to
    pub recipients: Collection,
    /// `tenant/name` -> `Category`: the tenant's own categories and edited built-in ones
    pub categories: Collection,
    /// `tenant/subscription id` -> `Subscription`
    pub subscriptions: Collection,
    /// `tenant/silence id` -> `Silence`
    pub silences: Collection,
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
    /// Opens (or creates) the database in `dir`, with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> StoreResult<Self> {
        let db = sled::Config::new().path(dir.join("db")).cache_capacity(cache_bytes).open()?;
        // Compiled plugin artifacts were kept here before they became files
        // (`plugins::artifacts`); a plugin without one is compiled again from its component.
        db.drop_tree("plugin_artifacts")?;
        // The compile cache before its entries carried their last use; it fills again as
        // plugins are uploaded.
        db.drop_tree("compile_cache")?;
        Ok(Store(Arc::new(Trees {
            tenants: Table(db.open_tree("tenants")?),
            api_keys: Table(db.open_tree("api_keys")?),
            sessions: Table(db.open_tree("sessions")?),
            plugins: db.open_tree("plugins")?,
            plugin_versions: db.open_tree("plugin_versions")?,
            plugin_components: db.open_tree("plugin_components")?,
            plugin_kv: db.open_tree("plugin_kv")?,
            plugin_logs: db.open_tree("plugin_logs")?,
            compiled_functions: db.open_tree("compiled_functions")?,
            customers: db.open_tree("customers")?,
            events: db.open_tree("events")?,
            rules: Collection(db.open_tree("rules")?),
            alerts: db.open_tree("alerts")?,
            alert_counts: db.open_tree("alert_counts")?,
            transitions: db.open_tree("transitions")?,
            notifications: db.open_tree("notifications")?,
            timers: db.open_tree("timers")?,
            channels: Collection(db.open_tree("channels")?),
            deliveries: db.open_tree("deliveries")?,
            delivery_queue: db.open_tree("delivery_queue")?,
            events_by_time: db.open_tree("events_by_time")?,
            event_types: db.open_tree("event_types")?,
            system_events: db.open_tree("system_events")?,
            cohorts: Collection(db.open_tree("cohorts")?),
            cohort_members: db.open_tree("cohort_members")?,
            cohort_batches: db.open_tree("cohort_batches")?,
            incidents: Collection(db.open_tree("incidents")?),
            open_incidents: db.open_tree("open_incidents")?,
            batches: db.open_tree("batches")?,
            batch_members: db.open_tree("batch_members")?,
            status_pages: db.open_tree("status_pages")?,
            recipients: Collection(db.open_tree("recipients")?),
            categories: Collection(db.open_tree("categories")?),
            subscriptions: Collection(db.open_tree("subscriptions")?),
            silences: Collection(db.open_tree("silences")?),
            flushes: group::Group::new(|_| 1, usize::MAX),
            queued: Mutex::default(),
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

    /// A fresh number, larger than every one given before, also across restarts and crashes.
    pub fn generate_id(&self) -> StoreResult<u64> {
        Ok(self.db.generate_id()?)
    }

    /// `flush`, for blocking threads.
    pub fn flush_now(&self) -> StoreResult<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Makes every write so far durable, in a flush shared with everyone waiting at the same
    /// time (group commit: one flush at a time, on a blocking thread, covers every caller queued
    /// before it began). Handlers call it before answering a change.
    ///
    /// (Not sled's `flush_async`: it waits on sled's I/O threads while holding sled's lock, and
    /// many at once can fill that pool while the write they wait for queues behind them.)
    pub async fn flush(&self) -> StoreResult<()> {
        let db = self.db.clone();
        self.flushes.submit((), move |round| group::each(round.len(), db.flush().map(|_| ()).map_err(Into::into))).await
    }
}

/// The removal of every entry whose key starts with `prefix`, for a transaction to apply.
fn removal(tree: &sled::Tree, prefix: &[u8]) -> StoreResult<sled::Batch> {
    let mut batch = sled::Batch::default();
    for key in tree.scan_prefix(prefix).keys() {
        batch.remove(key?);
    }
    Ok(batch)
}

/// What follows `prefix` in each key that starts with it, in key order (the ids under it).
fn suffixes(tree: &sled::Tree, prefix: &[u8]) -> StoreResult<Vec<String>> {
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
