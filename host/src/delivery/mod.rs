//! Delivery: every (notification, channel) pair is a `Delivery` kept in the store, written in the
//! same transaction as its notification as an entry in a time-ordered queue (until its first
//! attempt writes the delivery's own record, the entry holds only what the delivery needs beside
//! the notification, `Waiting`: the rest follows from the notification). The worker
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

use crate::channels::payloads::RenderError;
use crate::channels::render::Payload;
use crate::error::Invalid;
use crate::recipients::Audience;
use crate::records::Event;
use crate::records::notification::Notification;
use crate::store::{self, DeliveryWrite, QueueEntry, Stage, Store, StoreResult, TxResult};
pub use send::Sent;
pub use worker::{Deliverer, Parts, TestSend};

/// Why a test send could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The channel's templates or template plugin cannot make a payload.
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error(transparent)]
    Render(#[from] RenderError),
}

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

/// Queues a notification's deliveries, inside the transaction that keeps the notification.
pub fn enqueue(tx: &store::Tx, tenant: &str, n: &Notification, routes: &[(String, Audience)]) -> TxResult<()> {
    for (channel, audience) in routes {
        enqueue_to(tx, tenant, n, channel, audience)?;
    }
    Ok(())
}

/// When the first attempts of `n`'s deliveries are due: at once, or, for a batch's
/// notification, when the batch is sent.
pub fn first_due(n: &Notification) -> Timestamp {
    n.batch.as_ref().map_or(n.created_at, |batch| batch.until)
}

/// What a delivery's queue entry holds until its first attempt, beside its notification (the
/// rest of the delivery follows from the notification: `Delivery::waiting`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Waiting {
    #[serde(default, skip_serializing_if = "Audience::is_empty")]
    audience: Audience,
}

impl Delivery {
    /// The delivery of `n` to `channel` before its first attempt, due at `due`.
    fn waiting(n: &Notification, channel: &str, due: Timestamp, waiting: Waiting) -> Delivery {
        Delivery {
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
            audience: waiting.audience,
        }
    }
}

/// Queues the delivery of `n` to `channel` for its first attempt.
pub fn enqueue_to(tx: &store::Tx, tenant: &str, n: &Notification, channel: &str, audience: &Audience) -> TxResult<()> {
    tx.queue_delivery(first_due(n), tenant, &n.id, channel, &Waiting { audience: audience.clone() })
}

/// Adds `audience` to the delivery to `channel` of the batch notification `batch`, sent at
/// `until` (another subscription's notification joined the batch).
pub fn widen_audience(
    tx: &store::Tx,
    tenant: &str,
    batch: &str,
    until: Timestamp,
    channel: &str,
    audience: &Audience,
) -> TxResult<()> {
    tx.change_delivery(until, tenant, batch, channel, |stored: Stage<&mut Delivery, &mut Waiting>| {
        let widened = match stored {
            Stage::Recorded(delivery) => &mut delivery.audience,
            Stage::Waiting(waiting) => &mut waiting.audience,
        };
        let before = widened.clone();
        widened.extend(audience);
        // Most joins bring no one new: the delivery is written only when someone is.
        *widened != before
    })
}

/// The deliveries of a notification, by channel.
pub fn of_notification(store: &Store, tenant: &str, n: &Notification) -> StoreResult<Vec<Delivery>> {
    let due = first_due(n);
    let stored: Vec<(String, Stage<Delivery, Waiting>)> = store.deliveries_of(tenant, &n.id, &n.channels, due)?;
    Ok(stored
        .into_iter()
        .map(|(channel, stored)| match stored {
            Stage::Recorded(delivery) => delivery,
            Stage::Waiting(waiting) => Delivery::waiting(n, &channel, due, waiting),
        })
        .collect())
}

/// The delivery `entry` is an attempt of, with its notification when that was read to make it
/// (before its first attempt); none when it is gone, or its notification is.
fn of_entry(store: &Store, entry: &QueueEntry) -> StoreResult<Option<(Delivery, Option<Notification>)>> {
    Ok(match store.delivery(entry)? {
        None => None,
        Some(Stage::Recorded(delivery)) => Some((delivery, None)),
        Some(Stage::Waiting(waiting)) => store.notification(&entry.tenant, &entry.notification)?.map(|n| {
            let delivery = Delivery::waiting(&n, &entry.channel, entry.due, waiting);
            (delivery, Some(n))
        }),
    })
}

/// The write of a delivery an attempt (or a resend) left as it is: its queue entry for `dequeue`
/// leaves the queue, its next attempt (if any) enters it, and `report` goes to the outbox.
fn write(tenant: &str, delivery: &Delivery, dequeue: Option<Timestamp>, report: Option<Event>) -> DeliveryWrite {
    DeliveryWrite {
        tenant: tenant.to_string(),
        notification: delivery.notification_id.clone(),
        channel: delivery.channel_id.clone(),
        json: serde_json::to_vec(delivery).expect("deliveries serialize"),
        dequeue,
        enqueue: delivery.next_attempt_at.filter(|_| delivery.status == Status::Pending),
        report,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::context::RuleRef;
    use crate::records::notification::Kind;

    /// Stores written before the lean queue entry hold the whole waiting delivery in it: such an
    /// entry reads as its `Waiting`, and the delivery made from it and the notification is the
    /// one it held.
    #[test]
    fn an_entry_holding_a_whole_delivery_makes_the_same_delivery() {
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let n = Notification::new("t", Kind::Match, RuleRef::default(), now);
        let message_id = format!("msg_{}_chn_1", n.id.trim_start_matches("ntf_"));
        let held = json!({
            "notification_id": n.id, "channel_id": "chn_1", "message_id": message_id, "status": "pending",
            "created_at": "2026-12-01T10:00:00Z", "give_up_at": null, "next_attempt_at": "2026-12-01T10:00:00Z",
            "payload": null, "attempts": [], "error": null, "audience": { "groups": ["ops"] },
        });
        let waiting: Waiting = serde_json::from_value(held.clone()).unwrap();
        let delivery = Delivery::waiting(&n, "chn_1", first_due(&n), waiting);
        assert_eq!(serde_json::to_value(&delivery).unwrap(), held);
    }
}
