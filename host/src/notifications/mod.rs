//! Notifications: what a rule produced for its channels, kept in the store (with a delivery per
//! channel, see `delivery`) before anything is sent. A notification's status is its
//! deliveries' status, unless a silence kept it from them or its channels held it for a
//! digest or a group.

pub mod categories;
pub mod incidents;
pub mod routing;
pub mod silences;
pub mod status_page;
pub mod subscriptions;

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::context::HoldKind;
use crate::delivery::{self, Delivery};
use crate::error::{Invalid, invalid};
use crate::records::notification::{Kind, Notification};
use crate::store::{Store, StoreResult, Tx, TxResult};
use routing::{Routing, TenantRouting};

/// A notification with its deliveries, as the API shows it.
#[derive(Debug, Serialize)]
pub struct NotificationView {
    #[serde(flatten)]
    pub notification: Notification,
    pub status: Status,
    /// Why it was not sent as it came, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub deliveries: Vec<Delivery>,
}

impl NotificationView {
    fn new(notification: Notification, deliveries: Vec<Delivery>, now: Timestamp) -> Self {
        NotificationView {
            status: Status::of(&notification, &deliveries, now),
            reason: reason(&notification, now),
            notification,
            deliveries,
        }
    }

    /// The listing's shape: each delivery without its payload and with only its latest
    /// attempt.
    fn brief(mut self) -> Self {
        for d in &mut self.deliveries {
            d.payload = None;
            let latest = d.attempts.pop();
            d.attempts = latest.into_iter().collect();
        }
        self
    }
}

/// Where a notification's deliveries stand, together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its first attempts.
    Queued,
    /// Some delivery failed an attempt and waits for its retry.
    Retrying,
    /// Every channel took it.
    Delivered,
    /// Some delivery was given up.
    Failed,
    /// Its rule names no channel and no subscription took it: it is only recorded.
    Unrouted,
    /// A silence kept it from every channel.
    Silenced,
    /// Its channels hold it for quiet hours, a digest or a group still collecting.
    Held,
    /// Sent in a digest (see `held`).
    Digested,
    /// Sent in a group (see `held`).
    Grouped,
}

impl Status {
    pub fn of(n: &Notification, deliveries: &[Delivery], now: Timestamp) -> Status {
        let pending = deliveries.iter().filter(|d| d.status == delivery::Status::Pending);
        if n.silenced_by.is_some() {
            Status::Silenced
        } else if deliveries.is_empty() && !n.held.is_empty() {
            if n.held.iter().any(|h| now < h.until) {
                Status::Held
            } else if n.held.iter().all(|h| h.kind == HoldKind::Group) {
                Status::Grouped
            } else {
                Status::Digested
            }
        } else if deliveries.is_empty() {
            Status::Unrouted
        } else if pending.clone().any(|d| !d.attempts.is_empty()) {
            Status::Retrying
        } else if pending.count() > 0 {
            Status::Queued
        } else if deliveries.iter().any(|d| d.status == delivery::Status::Failed) {
            Status::Failed
        } else {
            Status::Delivered
        }
    }
}

/// Why a notification is not sent as it came, when it is not: its silence, or each channel's
/// hold and the digest or group it goes (or went) out in.
fn reason(n: &Notification, now: Timestamp) -> Option<String> {
    if let Some(id) = &n.silenced_by {
        return Some(format!("silenced by {id}"));
    }
    let mut reasons: Vec<String> = n
        .held
        .iter()
        .map(|h| {
            let what = if h.kind == HoldKind::Group { "group" } else { "digest" };
            if now >= h.until {
                format!("sent in {what} {} ({})", h.batch, h.channel)
            } else if h.kind == HoldKind::QuietHours {
                format!("held for quiet hours until {}, then sent in digest {} ({})", h.until, h.batch, h.channel)
            } else if h.kind == HoldKind::Inactive {
                format!("held outside active times until {}, then sent in digest {} ({})", h.until, h.batch, h.channel)
            } else {
                format!("held until {} for {what} {} ({})", h.until, h.batch, h.channel)
            }
        })
        .collect();
    if let Some(batch) = n.batch.as_ref().filter(|b| now < b.until) {
        reasons.push(format!("collecting held notifications for {} until {}", batch.channel, batch.until));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Routes a new notification and writes it with its deliveries (or its place in the batches
/// of the channels that hold it), inside the transaction that made it.
pub fn save(tx: &Tx, tenant: &str, n: &mut Notification, routing: &TenantRouting, now: Timestamp) -> TxResult<()> {
    let mut direct = Vec::new();
    for route in routing.route(n, now) {
        match &route.hold {
            Some(hold) => {
                let held = delivery::batches::hold(tx, tenant, &route.channel, hold, n, &route.audience, now)?;
                n.held.push(held);
            }
            None => direct.push((route.channel, route.audience)),
        }
    }
    tx.put_notification(tenant, &n.id, n)?;
    tx.tally(tenant, now, |minute| minute.notifications += 1);
    delivery::enqueue(tx, tenant, n, &direct)
}

/// A time window a client gives (a silence's, a maintenance's): it ends after it starts, and
/// after `now`.
pub fn check_window(starts_at: Timestamp, ends_at: Timestamp, now: Timestamp) -> Result<(), Invalid> {
    if ends_at <= starts_at {
        return Err(invalid("ends_at", "must be after starts_at"));
    }
    if ends_at <= now {
        return Err(invalid("ends_at", "is already past"));
    }
    Ok(())
}

/// Which notifications a listing wants, newest first.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub rule_id: Option<String>,
    pub incident_id: Option<String>,
    pub customer_id: Option<String>,
    pub status: Option<Status>,
    pub kind: Option<Kind>,
    /// Only those created at or after this time.
    pub since: Option<Timestamp>,
    /// Only those created before this time.
    pub until: Option<Timestamp>,
    /// The id of the last notification of the previous page.
    pub before: Option<String>,
    pub limit: Option<usize>,
}

pub const MAX_PAGE: usize = 500;
const DEFAULT_PAGE: usize = 100;

impl Query {
    /// How many notifications a page holds.
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE)
    }
}

/// Notifications as a whole: where new ones go (`routing`, kept per tenant until a
/// subscription, silence or channel changes), the delivery worker's wake-up once they are
/// queued, and what the API reads of them.
pub struct Notifications {
    store: Store,
    routing: Routing,
    clock: SharedClock,
    /// Notified when notifications were queued: the delivery worker waits on it.
    deliveries_due: Arc<Notify>,
}

impl Notifications {
    pub fn new(store: Store, clock: SharedClock, deliveries_due: Arc<Notify>) -> Self {
        Notifications { routing: Routing::new(&store), store, clock, deliveries_due }
    }

    /// Where the tenant's notifications go now.
    pub fn routing(&self, tenant: &str) -> StoreResult<Arc<TenantRouting>> {
        self.routing.tenant(tenant, self.clock.now())
    }

    /// A subscription, silence or channel of the tenant changed (or the tenant went): routing
    /// reads them again.
    pub fn routing_changed(&self, tenant: &str) -> StoreResult<()> {
        self.routing.changed(tenant, self.clock.now())
    }

    /// Tells the delivery worker that notifications were queued (once their transaction
    /// committed).
    pub fn wake_deliveries(&self) {
        self.deliveries_due.notify_one();
    }

    /// A notification with its deliveries: payloads and every attempt; its status as of `now`.
    pub fn view(&self, tenant: &str, id: &str, now: Timestamp) -> StoreResult<Option<NotificationView>> {
        let Some(notification) = self.store.notification(tenant, id)? else { return Ok(None) };
        let deliveries = delivery::of_notification(&self.store, tenant, &notification)?;
        Ok(Some(NotificationView::new(notification, deliveries, now)))
    }

    /// A page of notifications, newest first, each with its deliveries in brief.
    pub fn list(&self, tenant: &str, query: &Query, now: Timestamp) -> StoreResult<Vec<NotificationView>> {
        let limit = query.page_size();
        let mut page = Vec::new();
        for notification in self.store.notifications_newest_first(tenant, query.before.as_deref()) {
            let notification = notification?;
            if query.since.is_some_and(|since| notification.created_at < since) {
                break;
            }
            if wanted(query, &notification) {
                let deliveries = delivery::of_notification(&self.store, tenant, &notification)?;
                let view = NotificationView::new(notification, deliveries, now);
                if query.status.is_some_and(|s| s != view.status) {
                    continue;
                }
                page.push(view.brief());
                if page.len() == limit {
                    break;
                }
            }
        }
        Ok(page)
    }
}

fn wanted(query: &Query, n: &Notification) -> bool {
    query.rule_id.as_ref().is_none_or(|r| n.rule_id.as_ref() == Some(r))
        && query.incident_id.as_ref().is_none_or(|i| n.incident_id.as_ref() == Some(i))
        && query.customer_id.as_ref().is_none_or(|c| n.customer_id.as_ref() == Some(c))
        && query.kind.is_none_or(|k| k == n.kind)
        && query.until.is_none_or(|until| n.created_at < until)
}
