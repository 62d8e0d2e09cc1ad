//! The delivery worker: takes due entries from the queue and makes their attempts, each
//! channel behind its own gate (attempts in flight, attempts per second), so a slow endpoint
//! holds back only itself. Also what the API asks of delivery: renderings for previews, test
//! sends and resends.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};

use super::send::{Senders, Sent};
use super::settings::{DeliveryConfig, SmtpConfig};
use super::{Attempt, Delivery, Record, Status, Verdict, batches, queue_key, save, schedule};
use crate::channels::render::{self, Payload};
use crate::channels::{Channel, Channels};
use crate::clock::SharedClock;
use crate::context::{DigestItem, DigestRef};
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::plugins::Plugins;
use crate::recipients::{self, Audience};
use crate::records::notification::{self, Notification};
use crate::records::{Event, system};
use crate::rules::{Invalid, invalid};
use crate::store::group::{self, Group};
use crate::store::{self, Store, StoreResult};
use crate::tenants::Tenants;

/// The longest the loop sleeps before looking again (the clock may have been moved).
const POLL: Duration = Duration::from_secs(1);
/// Attempts waiting or running at once, over all channels.
const MAX_DISPATCHED: usize = 10_000;
/// Attempts a channel may have waiting for its gate, per attempt it may have in flight.
const QUEUED_PER_SLOT: usize = 8;
/// The attempts kept with a delivery (the oldest are dropped past this).
const MAX_ATTEMPTS_KEPT: usize = 100;
/// The most attempts recorded in one transaction.
const MAX_RECORDED_AT_ONCE: usize = 1_000;

/// One channel's limits, and the attempts waiting for them.
struct Gate {
    max_in_flight: u32,
    rate_per_second: Option<f64>,
    permits: Semaphore,
    queued: AtomicUsize,
    next_slot: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Gate {
    fn new(max_in_flight: u32, rate_per_second: Option<f64>) -> Gate {
        Gate {
            max_in_flight,
            rate_per_second,
            permits: Semaphore::new(max_in_flight as usize),
            queued: AtomicUsize::new(0),
            next_slot: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for the channel's next slot under its rate limit.
    async fn pace(&self) {
        let Some(rate) = self.rate_per_second else { return };
        let at = {
            let mut next = self.next_slot.lock().await;
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + Duration::from_secs_f64(1.0 / rate);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// A test send's result: what was sent, and the attempt (never recorded or retried).
#[derive(Debug, Serialize)]
pub struct TestSend {
    pub payload: Payload,
    pub attempt: Attempt,
}

pub struct Deliverer {
    store: Store,
    channels: Channels,
    tenants: Tenants,
    plugins: Arc<Plugins>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    senders: Senders,
    give_up_after: SignedDuration,
    disable_after: SignedDuration,
    wake: Arc<Notify>,
    system_due: Arc<Notify>,
    dispatched: Mutex<HashSet<Vec<u8>>>,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    /// Each channel as last read, with the bytes it was read from: a read that finds the same
    /// bytes reuses it instead of decoding them again.
    channel_cache: Mutex<HashMap<Vec<u8>, (sled::IVec, Channel)>>,
    /// Attempts finished at the same time are recorded in one transaction.
    recorder: Group<Record, ()>,
    global: Semaphore,
    /// A pass left due entries behind (a full gate, or too much under way): the next attempt to
    /// finish starts another pass.
    backlog: AtomicBool,
}

/// What a `Deliverer` is made from.
pub struct Parts {
    pub store: Store,
    pub tenants: Tenants,
    pub plugins: Arc<Plugins>,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    /// Notified whenever deliveries may have been queued.
    pub wake: Arc<Notify>,
    /// Notified when delivery put system events in the outbox.
    pub system_due: Arc<Notify>,
}

impl Deliverer {
    pub fn new(parts: Parts, delivery: &DeliveryConfig, smtp: Option<&SmtpConfig>) -> Result<Deliverer, String> {
        Ok(Deliverer {
            channels: Channels::new(parts.store.clone()),
            store: parts.store,
            tenants: parts.tenants,
            plugins: parts.plugins,
            clock: parts.clock,
            metrics: parts.metrics,
            senders: Senders::new(delivery, smtp)?,
            give_up_after: delivery.give_up_after.0,
            disable_after: delivery.disable_after.0,
            wake: parts.wake,
            system_due: parts.system_due,
            dispatched: Mutex::default(),
            gates: Mutex::default(),
            channel_cache: Mutex::default(),
            recorder: Group::new(|_| 1, MAX_RECORDED_AT_ONCE),
            global: Semaphore::new(delivery.max_in_flight),
            backlog: AtomicBool::new(false),
        })
    }

    pub fn senders(&self) -> &Senders {
        &self.senders
    }

    /// Looks at the queue now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs due attempts now and whenever more fall due, until the process ends. Entries left
    /// from before a restart are due at once.
    pub fn spawn(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let next = this.dispatch().await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "delivery pass failed; retrying");
                    None
                });
                let wait = next.map_or(POLL, |due| {
                    Duration::try_from(due.duration_since(this.clock.now())).unwrap_or(Duration::ZERO).min(POLL)
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = this.wake.notified() => {}
                }
            }
        });
    }

    /// Starts an attempt for every due entry not already under way; answers when the next
    /// entry falls due.
    async fn dispatch(self: &Arc<Self>) -> StoreResult<Option<Timestamp>> {
        // Whatever was queued is durable before its first attempt.
        self.store.flush().await?;
        let now = self.clock.now();
        for entry in self.store.delivery_queue.iter() {
            let (queue_key, _) = entry?;
            let Some((due, tenant, notification, channel)) = crate::store::keys::parse_timer(&queue_key) else {
                self.store.delivery_queue.remove(&queue_key)?;
                continue;
            };
            if due > now {
                return Ok(Some(due));
            }
            let queue_key = queue_key.to_vec();
            {
                let mut dispatched = self.dispatched.lock().expect("dispatch lock");
                if dispatched.len() >= MAX_DISPATCHED {
                    self.backlog.store(true, Ordering::Relaxed);
                    return Ok(None);
                }
                if dispatched.contains(&queue_key) {
                    continue;
                }
                let gate = self.gate(&tenant, &channel)?;
                if gate.queued.load(Ordering::Relaxed) >= gate.max_in_flight as usize * QUEUED_PER_SLOT {
                    self.backlog.store(true, Ordering::Relaxed);
                    continue;
                }
                gate.queued.fetch_add(1, Ordering::Relaxed);
                dispatched.insert(queue_key.clone());
                let this = self.clone();
                tokio::spawn(async move {
                    {
                        let _slot = gate.permits.acquire().await.expect("gates are never closed");
                        gate.pace().await;
                        let _global = this.global.acquire().await.expect("never closed");
                        if let Err(e) = this.attempt(&tenant, &notification, &channel, due).await {
                            tracing::error!(error = %e, %tenant, %notification, %channel, "delivery attempt not recorded");
                        }
                    }
                    gate.queued.fetch_sub(1, Ordering::Relaxed);
                    this.dispatched.lock().expect("dispatch lock").remove(&queue_key);
                    if this.backlog.swap(false, Ordering::Relaxed) {
                        this.wake();
                    }
                });
            }
        }
        Ok(None)
    }

    fn gate(&self, tenant: &str, channel: &str) -> StoreResult<Arc<Gate>> {
        let name = format!("{tenant}/{channel}");
        if let Some(gate) = self.gates.lock().expect("gates lock").get(&name) {
            return Ok(gate.clone());
        }
        let (max_in_flight, rate) = match self.channels.get(tenant, channel)? {
            Some(c) => (c.spec.max_in_flight, c.spec.rate_per_second),
            None => (1, None),
        };
        let gate = Arc::new(Gate::new(max_in_flight, rate));
        self.gates.lock().expect("gates lock").insert(name, gate.clone());
        Ok(gate)
    }

    /// A channel as stored now: decoded again only when its bytes changed.
    fn channel(&self, tenant: &str, id: &str) -> StoreResult<Option<Channel>> {
        let key = crate::channels::key(tenant, id);
        let Some(bytes) = self.store.channels.get(&key)? else { return Ok(None) };
        let mut cache = self.channel_cache.lock().expect("channel cache lock");
        if let Some((seen, channel)) = cache.get(key.as_bytes())
            && *seen == bytes
        {
            return Ok(Some(channel.clone()));
        }
        let channel: Channel = store::decode(&key, &bytes)?;
        cache.insert(key.into_bytes(), (bytes, channel.clone()));
        Ok(Some(channel))
    }

    /// A channel's limits changed, or it is gone: its next attempt makes a new gate (and its
    /// cached decoding goes with it).
    pub fn forget_gate(&self, tenant: &str, channel: &str) {
        self.gates.lock().expect("gates lock").remove(&format!("{tenant}/{channel}"));
        self.channel_cache.lock().expect("channel cache lock").remove(crate::channels::key(tenant, channel).as_bytes());
    }

    async fn attempt(&self, tenant: &str, notification: &str, channel_id: &str, due: Timestamp) -> StoreResult<()> {
        let key = super::key(tenant, notification, channel_id);
        let stored: Option<Delivery> = match self.store.deliveries.get(&key)? {
            Some(bytes) => Some(store::decode("delivery", &bytes)?),
            None => None,
        };
        // Queue keys keep microseconds.
        let is_due = |d: &Delivery| d.next_attempt_at.map(|at| at.as_microsecond()) == Some(due.as_microsecond());
        let Some(mut delivery) = stored.filter(|d| d.status == Status::Pending && is_due(d)) else {
            // A leftover of a deleted tenant, or of a delivery already moved on.
            self.store.delivery_queue.remove(queue_key(due, &key))?;
            return Ok(());
        };
        let now = self.clock.now();
        let channel = self.channel(tenant, channel_id)?;
        let sent = match &channel {
            None => Sent::refused("the channel was deleted"),
            Some(c) if !c.spec.enabled => Sent::refused(match &c.disabled_reason {
                Some(reason) => format!("the channel is disabled: {reason}"),
                None => "the channel is disabled".to_string(),
            }),
            Some(c) => match self.payload(tenant, c, &mut delivery).await {
                Ok(payload) => self.senders.send(c, &delivery.message_id, &payload, now).await,
                Err(e) => Sent::refused(e),
            },
        };
        let give_up_at = *delivery
            .give_up_at
            .get_or_insert(delivery.created_at.saturating_add(self.give_up_after).expect("bounded"));
        let number = delivery.attempts.last().map_or(1, |a| a.number + 1);
        let (verdict, retry_at) = match sent.verdict {
            Verdict::Retry => match schedule::next_attempt(now, number, sent.retry_after, give_up_at) {
                Some(at) => (Verdict::Retry, Some(at)),
                None => (Verdict::Failed, None),
            },
            other => (other, None),
        };
        self.metrics.delivery_attempt(match verdict {
            Verdict::Delivered => "delivered",
            Verdict::Retry => "retry",
            Verdict::Failed => "failed",
        });
        delivery.status = match verdict {
            Verdict::Delivered => Status::Delivered,
            Verdict::Retry => Status::Pending,
            Verdict::Failed => Status::Failed,
        };
        delivery.next_attempt_at = retry_at;
        delivery.error = match (verdict, sent.verdict) {
            (Verdict::Failed, Verdict::Retry) => Some(format!(
                "gave up after {number} attempts ({}); the last: {}",
                self.give_up_after,
                sent.error.as_deref().unwrap_or("no answer")
            )),
            (Verdict::Failed, _) => sent.error.clone(),
            _ => None,
        };
        let tried = sent.tried;
        delivery.attempts.push(Attempt::new(number, now, sent, verdict, retry_at));
        if delivery.attempts.len() > MAX_ATTEMPTS_KEPT {
            delivery.attempts.remove(0);
        }
        let report = match verdict {
            Verdict::Failed => self.failure_report(tenant, &delivery, now)?,
            _ => None,
        };
        let reported = report.is_some();
        let store = self.store.clone();
        let record = Record::new(tenant, key, &delivery, Some(due), report);
        self.recorder.submit(record, move |round| group::each(round.len(), save(&store, &round))).await?;
        if reported {
            self.system_due.notify_one();
        }
        // A success changes nothing for a channel that was not failing.
        let ok = verdict == Verdict::Delivered;
        if tried && !(ok && channel.is_some_and(|c| c.failing_since.is_none())) {
            let error = delivery.attempts.last().and_then(|a| a.error.as_deref());
            self.record_health(tenant, channel_id, ok, error, now)?;
        }
        Ok(())
    }

    /// The `delivery.failed` system event for a delivery that gave up, unless its notification
    /// was itself made from a `delivery.failed` (at most one level: never a loop).
    fn failure_report(&self, tenant: &str, delivery: &Delivery, now: Timestamp) -> StoreResult<Option<Event>> {
        let Some(n) = notification::get(&self.store, tenant, &delivery.notification_id)? else { return Ok(None) };
        if n.context.event.as_ref().is_some_and(|e| e.event_type == system::DELIVERY_FAILED) {
            return Ok(None);
        }
        let properties = serde_json::json!({
            "notification_id": n.id,
            "rule_id": n.rule_id,
            "channel_id": delivery.channel_id,
            "attempts": delivery.attempts.len(),
            "error": delivery.error,
        });
        Ok(Some(system::event(system::DELIVERY_FAILED, n.customer_id.as_deref(), properties, None, now)))
    }

    /// The delivery's payload: rendered at its first attempt, then kept.
    async fn payload(&self, tenant: &str, channel: &Channel, delivery: &mut Delivery) -> Result<Payload, String> {
        if let Some(payload) = &delivery.payload {
            return Ok(payload.clone());
        }
        let mut notification = notification::get(&self.store, tenant, &delivery.notification_id)
            .map_err(|e| e.to_string())?
            .ok_or("the notification was deleted")?;
        self.collect(tenant, &mut notification).map_err(|e| e.to_string())?;
        let payload = match self.render(tenant, channel, &notification, &delivery.audience).await {
            Ok(Ok(payload)) => payload,
            Ok(Err(Invalid { field, message })) => return Err(format!("cannot render `{field}`: {message}")),
            Err(e) => return Err(e.to_string()),
        };
        delivery.payload = Some(payload.clone());
        Ok(payload)
    }

    /// For a digest or group notification: closes the batch it collects and lists its members
    /// in its context (and, in words, in its message). Other notifications are left as they are.
    fn collect(&self, tenant: &str, n: &mut Notification) -> StoreResult<()> {
        const LISTED: usize = 1000;
        const IN_WORDS: usize = 50;
        let Some(batch) = n.batch.clone() else { return Ok(()) };
        let ids = batches::close(&self.store, tenant, n)?;
        let mut items = Vec::new();
        for id in ids.iter().take(LISTED) {
            if let Some(member) = notification::get(&self.store, tenant, id)? {
                items.push(DigestItem {
                    headline: render::Summary::of(&member).headline,
                    id: member.id,
                    severity: member.context.rule.severity,
                    rule_id: member.rule_id,
                    customer_id: member.customer_id,
                    created_at: member.created_at,
                });
            }
        }
        n.context.rule.severity = items.iter().map(|i| i.severity).max().unwrap_or_default();
        let mut lines: Vec<String> = items
            .iter()
            .take(IN_WORDS)
            .map(|i| format!("- [{}] {} ({})", format!("{:?}", i.severity).to_lowercase(), i.headline, i.created_at))
            .collect();
        if ids.len() > IN_WORDS {
            lines.push(format!("and {} more", ids.len() - IN_WORDS));
        }
        n.message = Some(lines.join("\n"));
        n.context.digest = Some(DigestRef { reason: batch.kind, until: batch.until, count: ids.len(), items });
        Ok(())
    }

    /// What `channel` sends for `n` (to `audience` beyond its own addresses, for email): from
    /// its template plugin, or its templates.
    pub async fn render(
        &self,
        tenant: &str,
        channel: &Channel,
        n: &Notification,
        audience: &Audience,
    ) -> ApiResult<Result<Payload, Invalid>> {
        let mut payload = self.render_body(tenant, channel, n).await?;
        if let Ok(Payload::Email { to, .. }) = &mut payload {
            let mut everyone = audience.clone();
            everyone.groups.extend(channel.spec.to_groups.iter().cloned());
            for email in recipients::emails(&self.store.recipients, tenant, &everyone)? {
                if !to.contains(&email) {
                    to.push(email);
                }
            }
        }
        Ok(payload)
    }

    async fn render_body(
        &self,
        tenant: &str,
        channel: &Channel,
        n: &Notification,
    ) -> ApiResult<Result<Payload, Invalid>> {
        let plugin = channel.spec.template_plugin.as_ref().filter(|_| n.kind.is_rule_kind());
        let Some(name) = plugin else { return Ok(render::render(&channel.spec, n)) };
        let at = "template_plugin";
        let tenant = self.tenants.get(tenant)?.ok_or_else(|| ApiError::not_found("tenant"))?;
        let Some(plugin) = self.plugins.get(&tenant.id, name)? else {
            return Ok(Err(invalid(at, format!("there is no plugin named `{name}`"))));
        };
        if !plugin.enabled {
            return Ok(Err(invalid(at, format!("plugin `{name}` is disabled"))));
        }
        let report = self.plugins.render(&tenant, &plugin, &n.context).await?;
        Ok(match report.result {
            Ok(out) => render::from_plugin(&channel.spec, n, out),
            Err(e) => Err(invalid(at, format!("plugin `{name}` failed: {e}"))),
        })
    }

    /// After a real attempt: a success clears the channel's failing streak; a failure starts
    /// one, or disables the channel once the streak has lasted `disable_after`.
    fn record_health(
        &self,
        tenant: &str,
        channel: &str,
        ok: bool,
        error: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let disable_after = self.disable_after;
        let disabled = self.channels.update(tenant, channel, |c| {
            if ok {
                return c.failing_since.take().is_some();
            }
            match c.failing_since {
                None => {
                    c.failing_since = Some(now);
                    true
                }
                Some(since) if c.spec.enabled && now.duration_since(since) >= disable_after => {
                    c.spec.enabled = false;
                    c.disabled_reason = Some(format!(
                        "disabled at {now}: every attempt since {since} failed (longer than delivery.disable_after, \
                         {}); the last: {}",
                        crate::duration::Duration(disable_after),
                        error.unwrap_or("no answer")
                    ));
                    true
                }
                Some(_) => false,
            }
        })?;
        if let Some(c) = disabled.filter(|c| !c.spec.enabled && !ok) {
            tracing::warn!(%tenant, %channel, "channel failing for too long; disabled");
            let properties = serde_json::json!({
                "channel_id": c.id, "name": c.spec.name, "kind": c.spec.kind, "reason": c.disabled_reason,
            });
            let event = system::event("channel.disabled", None, properties, None, now);
            system::emit_now(&self.store.system_events, tenant, event)?;
            self.system_due.notify_one();
        }
        Ok(())
    }

    /// Renders a sample notification for `channel` (and `audience`) and sends it once,
    /// recording nothing.
    pub async fn test(&self, tenant: &str, channel: &Channel, audience: &Audience) -> ApiResult<TestSend> {
        let now = self.clock.now();
        let sample = render::sample(tenant, now);
        let payload = self.render(tenant, channel, &sample, audience).await??;
        let message_id = format!("msg_test_{:016x}", rand::random::<u64>());
        let sent = self.senders.send(channel, &message_id, &payload, now).await;
        let verdict = sent.verdict;
        Ok(TestSend { payload, attempt: Attempt::new(1, now, sent, verdict, None) })
    }

    /// Queues a notification's finished deliveries again (all, or the one to `channel`), with
    /// the same `webhook-id` and a fresh rendering and retry period.
    pub async fn resend(&self, tenant: &str, notification: &str, channel: Option<&str>) -> ApiResult<Vec<Delivery>> {
        let now = self.clock.now();
        let mut queued = Vec::new();
        for mut delivery in super::of_notification(&self.store, tenant, notification)? {
            if channel.is_some_and(|c| c != delivery.channel_id) || delivery.status == Status::Pending {
                continue;
            }
            delivery.status = Status::Pending;
            delivery.error = None;
            delivery.payload = None;
            delivery.give_up_at = Some(now.saturating_add(self.give_up_after).expect("bounded"));
            delivery.next_attempt_at = Some(now);
            let key = super::key(tenant, notification, &delivery.channel_id);
            save(&self.store, &[Record::new(tenant, key, &delivery, None, None)])?;
            queued.push(delivery);
        }
        self.store.flush().await?;
        self.wake();
        Ok(queued)
    }
}
