//! Delivery: every (notification, channel) pair is a `Delivery` kept in sled, written in the
//! same transaction as its notification, with an entry in a time-ordered queue. The worker
//! (`worker`) takes due entries, renders the payload once, sends it (`send`), records the
//! attempt and either finishes the delivery or queues its retry. A crash at any moment loses
//! nothing: an entry leaves the queue only with the record of its attempt, so at worst an
//! attempt is made twice, with the same `webhook-id`.

pub mod batches;
mod schedule;
mod send;
pub mod settings;
mod worker;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sled::Transactional;

use crate::channels::render::Payload;
use crate::recipients::Audience;
use crate::records::notification::Notification;
use crate::records::{Event, system};
use crate::store::keys;
use crate::store::{self, Store, StoreError, StoreResult, TxResult};
pub use send::Sent;
pub use worker::{Deliverer, Parts, TestSend};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// The channel took it (a 2xx answer, or the SMTP server accepted it).
    Delivered,
    /// Given up: a 410, a permanent error, or retries ran out.
    Failed,
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Delivered,
    /// Failed; another attempt follows.
    Retry,
    /// Failed for good.
    Failed,
}

/// One attempt, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    pub at: Timestamp,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// The start of the answer (at most 1 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub verdict: Verdict,
    /// When the next attempt is due, after a `retry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Timestamp>,
}

impl Attempt {
    /// The record of an attempt that came to `sent`, judged `verdict`.
    pub fn new(number: u32, at: Timestamp, sent: Sent, verdict: Verdict, retry_at: Option<Timestamp>) -> Attempt {
        Attempt {
            number,
            at,
            duration_ms: sent.duration_ms,
            status_code: sent.status_code,
            response: sent.response,
            error: sent.error,
            verdict,
            retry_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub notification_id: String,
    pub channel_id: String,
    /// The `webhook-id` header: the same on every attempt, so receivers can drop duplicates.
    pub message_id: String,
    pub status: Status,
    pub created_at: Timestamp,
    /// No retry after this time; set at the first attempt (and again by a resend).
    #[serde(default)]
    pub give_up_at: Option<Timestamp>,
    #[serde(default)]
    pub next_attempt_at: Option<Timestamp>,
    /// What is sent, rendered at the first attempt and kept for the retries.
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Why it failed for good.
    #[serde(default)]
    pub error: Option<String>,
    /// Who else an email is for: the groups and recipients of the subscriptions that routed the
    /// notification here.
    #[serde(default, skip_serializing_if = "Audience::is_empty")]
    pub audience: Audience,
}

/// `tenant\0notification\0channel`: one delivery.
pub fn key(tenant: &str, notification: &str, channel: &str) -> Vec<u8> {
    [tenant.as_bytes(), b"\0", notification.as_bytes(), b"\0", channel.as_bytes()].concat()
}

/// `tenant\0notification\0`: every delivery of a notification.
fn notification_prefix(tenant: &str, notification: &str) -> String {
    format!("{tenant}\0{notification}\0")
}

/// A queue entry: the due time, then the delivery's key (the shape of a scheduler timer).
fn queue_key(due: Timestamp, delivery_key: &[u8]) -> Vec<u8> {
    [&keys::due_bound(due)[..], delivery_key].concat()
}

/// Writes a notification's deliveries and queues them, inside the transaction that keeps the
/// notification.
pub fn enqueue(tx: &store::Tx, tenant: &str, n: &Notification, routes: &[(String, Audience)]) -> TxResult<()> {
    for (channel, audience) in routes {
        enqueue_at(tx, tenant, n, channel, audience, n.created_at)?;
    }
    Ok(())
}

/// Writes the delivery of `n` to `channel` and queues its first attempt at `due`.
pub fn enqueue_at(
    tx: &store::Tx,
    tenant: &str,
    n: &Notification,
    channel: &str,
    audience: &Audience,
    due: Timestamp,
) -> TxResult<()> {
    let delivery = Delivery {
        notification_id: n.id.clone(),
        channel_id: channel.to_string(),
        message_id: format!("msg_{}_{channel}", n.id.trim_start_matches("ntf_")),
        status: Status::Pending,
        created_at: n.created_at,
        give_up_at: None,
        next_attempt_at: Some(due),
        payload: None,
        attempts: Vec::new(),
        error: None,
        audience: audience.clone(),
    };
    let key = key(tenant, &n.id, channel);
    store::tx_put_json(tx.deliveries, &key, &delivery)?;
    tx.queue_delivery(queue_key(due, &key))?;
    Ok(())
}

/// Adds `audience` to a queued delivery's (a batch that another subscription's notification
/// joined).
pub fn widen_audience(
    tx: &store::Tx,
    tenant: &str,
    notification: &str,
    channel: &str,
    audience: &Audience,
) -> TxResult<()> {
    let key = key(tenant, notification, channel);
    if let Some(mut delivery) = store::tx_get_json::<Delivery>(tx.deliveries, &key)? {
        let before = delivery.audience.clone();
        delivery.audience.extend(audience);
        // Most joins bring no one new: the delivery is written only when someone is.
        if delivery.audience != before {
            store::tx_put_json(tx.deliveries, &key, &delivery)?;
        }
    }
    Ok(())
}

/// The deliveries of a notification, by channel.
pub fn of_notification(store: &Store, tenant: &str, notification: &str) -> StoreResult<Vec<Delivery>> {
    store::scan_json(&store.deliveries, &notification_prefix(tenant, notification))
}

/// A delivery as an attempt (or a resend) left it, to be written with its queue entry moved and
/// the system event the attempt calls for (a `delivery.failed`), if any.
pub struct Record {
    tenant: String,
    key: Vec<u8>,
    bytes: Vec<u8>,
    dequeue: Option<Timestamp>,
    enqueue: Option<Timestamp>,
    report: Option<Event>,
}

impl Record {
    fn new(tenant: &str, key: Vec<u8>, delivery: &Delivery, dequeue: Option<Timestamp>, report: Option<Event>) -> Self {
        Record {
            tenant: tenant.to_string(),
            bytes: serde_json::to_vec(delivery).expect("deliveries serialize"),
            key,
            dequeue,
            enqueue: delivery.next_attempt_at.filter(|_| delivery.status == Status::Pending),
            report,
        }
    }
}

/// Writes `records` in one transaction.
fn save(store: &Store, records: &[Record]) -> StoreResult<()> {
    (&store.deliveries, &store.delivery_queue, &store.system_events)
        .transaction(|(deliveries, queue, outbox)| {
            for r in records {
                deliveries.insert(r.key.as_slice(), r.bytes.as_slice())?;
                if let Some(event) = &r.report {
                    system::emit(outbox, &r.tenant, event.clone(), None)?;
                }
                if let Some(due) = r.dequeue {
                    queue.remove(queue_key(due, &r.key))?;
                }
                if let Some(next) = r.enqueue {
                    queue.insert(queue_key(next, &r.key), &[][..])?;
                }
            }
            Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
        })
        .map_err(StoreError::from)?;
    store.note_queued(records.iter().filter_map(|r| r.enqueue.map(|next| queue_key(next, &r.key))));
    Ok(())
}
