//! Deliveries and their queue outside transactions: what the delivery worker reads and writes.
//! A notification's deliveries are first written with it, through `Tx`, each as its queue entry
//! alone (the entry's value holds what the delivery needs beside its notification, its
//! `Stage::Waiting`); the first attempt writes the delivery's record and takes the entry out,
//! and a retry's entry is a key alone.

use jiff::Timestamp;
use serde::de::DeserializeOwned;

use super::backend::Bytes;
use super::queues::outbox_entry;
use super::{Store, StoreResult, decode, keys, transaction};
use crate::records::Event;

/// An attempt waiting in the delivery queue: the delivery of `notification` to `channel`, due
/// at `due`. Entries sort by due time, then by delivery.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueEntry {
    pub due: Timestamp,
    pub tenant: String,
    pub notification: String,
    pub channel: String,
}

impl QueueEntry {
    /// The entry of the delivery of `notification` to `channel` due at `due`, to the
    /// microsecond its key keeps (so an entry made here equals the one read back).
    pub(super) fn new(due: Timestamp, tenant: &str, notification: &str, channel: &str) -> Self {
        let due = Timestamp::from_microsecond(due.as_microsecond()).expect("a timestamp's own microseconds");
        QueueEntry { due, tenant: tenant.into(), notification: notification.into(), channel: channel.into() }
    }

    /// The place in the queue before every entry due at or after `at`.
    pub fn first_at(at: Timestamp) -> Self {
        QueueEntry { due: at, tenant: String::new(), notification: String::new(), channel: String::new() }
    }

    pub(super) fn key(&self) -> Vec<u8> {
        keys::queued(self.due, &self.tenant, &self.notification, &self.channel)
    }

    fn parse(key: &[u8]) -> Option<Self> {
        let (due, tenant, notification, channel) = keys::parse_timer(key)?;
        Some(QueueEntry { due, tenant: tenant.into(), notification: notification.into(), channel: channel.into() })
    }
}

/// A delivery as an attempt (or a resend) left it: written with its queue entry moved and the
/// system event the attempt calls for, if any.
pub struct DeliveryWrite {
    pub tenant: String,
    pub notification: String,
    pub channel: String,
    /// The delivery's JSON.
    pub json: Vec<u8>,
    /// The queue entry the attempt was made for, which leaves the queue. When it has left
    /// already (the attempt was recorded by another node, or by this one before a pause), the
    /// write is stale and is dropped.
    pub dequeue: Option<Timestamp>,
    /// When its next attempt is due, if it has one.
    pub enqueue: Option<Timestamp>,
    /// A system event reporting it (a `delivery.failed`).
    pub report: Option<Event>,
}

impl DeliveryWrite {
    fn entry(&self, due: Timestamp) -> QueueEntry {
        QueueEntry::new(due, &self.tenant, &self.notification, &self.channel)
    }
}

/// A delivery as the store keeps it: its record (`R`) once its first attempt (or a resend)
/// wrote one; before that, what its queue entry holds beside the notification (`W`).
#[derive(Debug, PartialEq)]
pub enum Stage<R, W> {
    Recorded(R),
    Waiting(W),
}

impl<R: DeserializeOwned, W: DeserializeOwned> Stage<R, W> {
    fn decode(stage: Stage<Bytes, Bytes>) -> StoreResult<Self> {
        Ok(match stage {
            Stage::Recorded(bytes) => Stage::Recorded(decode("delivery", &bytes)?),
            Stage::Waiting(bytes) => Stage::Waiting(decode("queued delivery", &bytes)?),
        })
    }
}

/// A queue entry's value when its delivery waits for its first attempt (a retry's entry is a
/// key alone).
pub(super) fn waiting(value: Option<Bytes>) -> Option<Bytes> {
    value.filter(|value| !value.is_empty())
}

impl Store {
    /// The delivery `entry` is an attempt of: its record, or, before its first attempt, what the
    /// entry holds.
    pub fn delivery<R: DeserializeOwned, W: DeserializeOwned>(
        &self,
        entry: &QueueEntry,
    ) -> StoreResult<Option<Stage<R, W>>> {
        let record = self.deliveries.get(keys::delivery(&entry.tenant, &entry.notification, &entry.channel))?;
        let stage = match record {
            Some(bytes) => Some(Stage::Recorded(bytes)),
            None => waiting(self.delivery_queue.get(entry.key())?).map(Stage::Waiting),
        };
        stage.map(Stage::decode).transpose()
    }

    /// A notification's deliveries to `channels`, by channel in channel order: those recorded,
    /// and those waiting for their first attempt at `first_due` (in its queue entry).
    pub fn deliveries_of<R: DeserializeOwned, W: DeserializeOwned>(
        &self,
        tenant: &str,
        notification: &str,
        channels: &[String],
        first_due: Timestamp,
    ) -> StoreResult<Vec<(String, Stage<R, W>)>> {
        let prefix = keys::rule_prefix(tenant, notification);
        let mut found = std::collections::BTreeMap::new();
        for entry in self.deliveries.scan_prefix(&prefix) {
            let (key, bytes) = entry?;
            found.insert(String::from_utf8_lossy(&key[prefix.len()..]).into_owned(), Stage::Recorded(bytes));
        }
        for channel in channels {
            if !found.contains_key(channel) {
                let entry = QueueEntry::new(first_due, tenant, notification, channel);
                if let Some(bytes) = waiting(self.delivery_queue.get(entry.key())?) {
                    found.insert(channel.clone(), Stage::Waiting(bytes));
                }
            }
        }
        found.into_iter().map(|(channel, stage)| Ok((channel, Stage::decode(stage)?))).collect()
    }

    /// Writes deliveries an attempt or a resend changed, in one transaction, except stale ones
    /// (see `DeliveryWrite::dequeue`).
    pub fn save_deliveries(&self, writes: &[DeliveryWrite]) -> StoreResult<()> {
        let dequeued: Vec<Vec<u8>> = writes.iter().filter_map(|w| Some(w.entry(w.dequeue?).key())).collect();
        transaction(&[&self.deliveries, &self.delivery_queue, &self.system_events], |t| {
            let (deliveries, queue, outbox) = (&t[0], &t[1], &t[2]);
            queue.prefetch(&dequeued)?;
            for w in writes {
                if let Some(due) = w.dequeue
                    && queue.remove(w.entry(due).key())?.is_none()
                {
                    continue;
                }
                deliveries.insert(keys::delivery(&w.tenant, &w.notification, &w.channel), w.json.as_slice())?;
                if let Some(event) = &w.report {
                    let (key, bytes) = outbox_entry(&w.tenant, event.clone(), None);
                    outbox.insert(key, bytes)?;
                }
                if let Some(next) = w.enqueue {
                    queue.insert(w.entry(next).key(), &[][..])?;
                }
            }
            Ok(())
        })?;
        self.note_queued(writes.iter().filter_map(|w| w.enqueue.map(|next| w.entry(next))));
        Ok(())
    }

    /// The queue's entries from `from` on (all of them without), in order. Entries that cannot
    /// be read are skipped.
    pub fn queue_from(&self, from: Option<&QueueEntry>) -> impl Iterator<Item = StoreResult<QueueEntry>> + use<> {
        let start = from.map(QueueEntry::key).unwrap_or_default();
        self.delivery_queue.range(start..).keys().filter_map(|key| match key {
            Ok(key) => QueueEntry::parse(&key).map(Ok),
            Err(e) => Some(Err(e)),
        })
    }

    /// Removes an entry from the queue (its delivery moved on, or is gone).
    pub fn dequeue(&self, entry: &QueueEntry) -> StoreResult<()> {
        self.delivery_queue.remove(entry.key())?;
        Ok(())
    }

    /// The queue entries written since the last call, or none when more were written than kept
    /// (the whole queue must be read).
    pub fn take_queued(&self) -> Option<Vec<QueueEntry>> {
        let queued = std::mem::take(&mut *self.queued.lock().expect("queued lock"));
        (!queued.overflowed).then_some(queued.entries)
    }
}
