//! Batches: what a channel holds (quiet hours, a digest, a group) waits in a batch. The first
//! held notification opens one: a `digest` or `group` notification whose delivery to the
//! channel is queued for the batch's time; later ones join it. Everything is written in the
//! transaction that makes the held notification, so a crash loses none. When the delivery
//! worker renders the batch's notification it closes the batch (later notifications open a new
//! one) and lists its members.

use jiff::Timestamp;

use crate::channels::noise::Hold;
use crate::context::{HoldKind, RuleRef};
use crate::recipients::Audience;
use crate::records::notification::{Batch, Held, Kind, Notification, OpenBatch};
use crate::store::{Store, StoreResult, Tx, TxResult};

/// Holds `n` for `channel`: it joins the channel's open batch for `hold`, or opens one. Answers
/// what `n` records of it.
pub fn hold(
    tx: &Tx,
    tenant: &str,
    channel: &str,
    hold: &Hold,
    n: &Notification,
    audience: &Audience,
    now: Timestamp,
) -> TxResult<Held> {
    let open = tx.open_batch(tenant, channel, &hold.key)?;
    let (batch, until) = match open.filter(|b| now < b.until) {
        Some(open) => {
            if !audience.is_empty() {
                super::widen_audience(tx, tenant, &open.notification, open.until, channel, audience)?;
            }
            (open.notification, open.until)
        }
        None => {
            let batch = opened(tenant, channel, hold, n, now);
            tx.put_notification(tenant, &batch.id, &batch)?;
            super::enqueue_to(tx, tenant, &batch, channel, audience)?;
            tx.put_open_batch(
                tenant,
                channel,
                &hold.key,
                &OpenBatch { notification: batch.id.clone(), until: hold.until },
            )?;
            (batch.id, hold.until)
        }
    };
    tx.add_batch_member(tenant, &batch, &n.id)?;
    Ok(Held { channel: channel.to_string(), kind: hold.kind, until, batch })
}

/// A new batch's notification. A group takes its first member's rule (groups are most often
/// by rule); a digest names none.
fn opened(tenant: &str, channel: &str, hold: &Hold, first: &Notification, now: Timestamp) -> Notification {
    let mut n = match hold.kind {
        HoldKind::Group => {
            let mut n = Notification::new(tenant, Kind::Group, first.context.rule.clone(), now);
            n.rule_id = first.rule_id.clone();
            n
        }
        HoldKind::QuietHours | HoldKind::Inactive | HoldKind::Digest => {
            Notification::new(tenant, Kind::Digest, RuleRef { name: "Digest".into(), ..RuleRef::default() }, now)
        }
    };
    n.channels = vec![channel.to_string()];
    n.batch = Some(Batch { channel: channel.to_string(), kind: hold.kind, key: hold.key.clone(), until: hold.until });
    n
}

/// Closes the batch `n` collects (notifications held from now on open a new one) and answers
/// its members' ids, oldest first. Closing twice (a retry, a resend) answers the same members.
pub fn close(store: &Store, tenant: &str, n: &Notification) -> StoreResult<Vec<String>> {
    let Some(batch) = &n.batch else { return Ok(Vec::new()) };
    store.close_batch(tenant, &batch.channel, &batch.key, &n.id)
}
