//! Batches: what a channel holds (quiet hours, a digest, a group) waits in a batch. The first
//! held notification opens one: a `digest` or `group` notification whose delivery to the
//! channel is queued for the batch's time; later ones join it. Everything is written in the
//! transaction that makes the held notification, so a crash loses none. When the delivery
//! worker renders the batch's notification it closes the batch (later notifications open a new
//! one) and lists its members.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::channels::noise::Hold;
use crate::context::{HoldKind, RuleRef};
use crate::recipients::Audience;
use crate::records::notification::{Batch, Held, Kind, Notification};
use crate::store::{self, Store, StoreError, StoreResult, Tx, TxResult};

/// A batch still collecting: its notification and when it goes out.
#[derive(Debug, Serialize, Deserialize)]
struct OpenBatch {
    notification: String,
    until: Timestamp,
}

fn batch_key(tenant: &str, channel: &str, key: &str) -> Vec<u8> {
    [tenant.as_bytes(), b"\0", channel.as_bytes(), b"\0", key.as_bytes()].concat()
}

fn members_prefix(tenant: &str, batch: &str) -> Vec<u8> {
    [tenant.as_bytes(), b"\0", batch.as_bytes(), b"\0"].concat()
}

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
    let open: Option<OpenBatch> = tx.open_batch(tenant, channel, &hold.key)?;
    let (batch, until) = match open.filter(|b| now < b.until) {
        Some(open) => {
            if !audience.is_empty() {
                super::widen_audience(tx, tenant, &open.notification, channel, audience)?;
            }
            (open.notification, open.until)
        }
        None => {
            let batch = opened(tenant, channel, hold, n, now);
            tx.put_notification(tenant, &batch.id, &batch)?;
            super::enqueue_at(tx, tenant, &batch, channel, audience, hold.until)?;
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
        HoldKind::QuietHours | HoldKind::Digest => {
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
    let key = batch_key(tenant, &batch.channel, &batch.key);
    store
        .batches
        .transaction(|batches| {
            let open: Option<OpenBatch> = store::tx_get_json(batches, &key)?;
            if open.is_some_and(|open| open.notification == n.id) {
                batches.remove(key.as_slice())?;
            }
            Ok(())
        })
        .map_err(StoreError::from)?;
    let prefix = members_prefix(tenant, &n.id);
    store
        .batch_members
        .scan_prefix(&prefix)
        .keys()
        .map(|k| Ok(String::from_utf8_lossy(&k?[prefix.len()..]).into_owned()))
        .collect()
}
