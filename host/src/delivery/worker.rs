//! The delivery worker: takes due entries from the queue and makes their attempts, each
//! channel behind its own gate (attempts in flight, attempts per second), so a slow endpoint
//! holds back only itself. Also what the API asks of delivery: renderings for previews, test
//! sends and resends.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};

use super::send::{Senders, Sent};
use super::settings::{DeliveryConfig, SmtpConfig};
use super::{Attempt, Delivery, DeliveryError, Status, Verdict, batches, schedule, write};
use crate::channels::payloads::Renderer;
use crate::channels::render::{self, Payload};
use crate::channels::summary::Summary;
use crate::channels::{Channel, Channels};
use crate::clock::SharedClock;
use crate::cluster::Cluster;
use crate::context::{DigestItem, DigestRef};
use crate::error::Invalid;
use crate::metrics::Metrics;
use crate::plugins::Plugins;
use crate::recipients::Audience;
use crate::records::notification::Notification;
use crate::records::{Event, system};
use crate::store::group::{self, Group};
use crate::store::{DeliveryWrite, QueueEntry, Store, StoreResult};
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

/// One channel's limits and the due entries it took from the queue. Up to `max_in_flight`
/// runners take its waiting entries in queue order; when the waiting list is full, later due
/// entries stay in the queue and the gate reads on from the first of them once it has room, so
/// a slow channel holds back only itself and a pass never walks its backlog again.
struct Gate {
    tenant: String,
    channel: String,
    max_in_flight: u32,
    rate_per_second: Option<f64>,
    next_slot: tokio::sync::Mutex<tokio::time::Instant>,
    state: Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    /// Queue keys taken for this channel, oldest first.
    waiting: VecDeque<QueueEntry>,
    /// Runners taking from `waiting`.
    runners: u32,
    /// The first due queue key left behind because `waiting` was full.
    left_from: Option<QueueEntry>,
    /// A read of the queue from `left_from` is under way.
    reading_on: bool,
}

impl GateState {
    /// Marks `key` as left in the queue (keeping the earliest mark).
    fn leave(&mut self, entry: &QueueEntry) {
        if self.left_from.as_ref().is_none_or(|from| entry < from) {
            self.left_from = Some(entry.clone());
        }
    }
}

impl Gate {
    fn new(tenant: &str, channel: &str, max_in_flight: u32, rate_per_second: Option<f64>) -> Gate {
        Gate {
            tenant: tenant.to_string(),
            channel: channel.to_string(),
            max_in_flight,
            rate_per_second,
            next_slot: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            state: Mutex::default(),
        }
    }

    /// How many due entries it holds at most.
    fn capacity(&self) -> usize {
        self.max_in_flight as usize * QUEUED_PER_SLOT
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
    /// The custom fields and event properties the sample made up for the templates, by path.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub placeholders: BTreeMap<String, Value>,
    pub attempt: Attempt,
}

/// (tenant, channel id) -> the bytes a channel was read from, and what they decoded to.
type ChannelCache = HashMap<(String, String), (Vec<u8>, Channel)>;

pub struct Deliverer {
    store: Store,
    /// Which tenants' deliveries this node makes.
    cluster: Arc<Cluster>,
    channels: Channels,
    renderer: Renderer,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    senders: Senders,
    give_up_after: SignedDuration,
    disable_after: SignedDuration,
    wake: Arc<Notify>,
    system_due: Arc<Notify>,
    /// Queue keys taken by a gate, waiting or under way.
    dispatched: Mutex<HashSet<QueueEntry>>,
    /// Each channel's gate, by tenant and channel.
    gates: Mutex<HashMap<String, HashMap<String, Arc<Gate>>>>,
    /// Where the next pass reads the queue from: every due entry before it was seen.
    cursor: Mutex<Option<QueueEntry>>,
    /// Each channel as last read, with the bytes it was read from: a read that finds the same
    /// bytes reuses it instead of decoding them again.
    channel_cache: Mutex<ChannelCache>,
    /// Attempts finished at the same time are recorded in one transaction.
    recorder: Group<DeliveryWrite, ()>,
    global: Semaphore,
    /// A pass stopped at `MAX_DISPATCHED`: attempts finishing once half of them are done wake
    /// the worker, and its next pass reads the whole queue.
    backlog: AtomicBool,
}

/// What a `Deliverer` is made from.
pub struct Parts {
    pub store: Store,
    pub cluster: Arc<Cluster>,
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
            renderer: Renderer::new(parts.store.clone(), parts.tenants, parts.plugins),
            store: parts.store,
            cluster: parts.cluster,
            clock: parts.clock,
            metrics: parts.metrics,
            senders: Senders::new(delivery, smtp)?,
            give_up_after: delivery.give_up_after.0,
            disable_after: delivery.disable_after.0,
            wake: parts.wake,
            system_due: parts.system_due,
            dispatched: Mutex::default(),
            gates: Mutex::default(),
            cursor: Mutex::default(),
            channel_cache: Mutex::default(),
            recorder: Group::new(|_| 1, MAX_RECORDED_AT_ONCE),
            global: Semaphore::new(delivery.max_in_flight),
            backlog: AtomicBool::new(false),
        })
    }

    /// What renders its channels' payloads (for previews too).
    pub fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    pub fn senders(&self) -> &Senders {
        &self.senders
    }

    /// Looks at the queue now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs due attempts now and whenever more fall due, until the process ends. Entries left
    /// from before a restart are due at once. A pass reads the queue from where the last one
    /// stopped; once every `POLL` one reads it whole (the clock may have been moved back).
    pub fn spawn(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut last_whole: Option<tokio::time::Instant> = None;
            loop {
                let whole = last_whole.is_none_or(|at| at.elapsed() >= POLL);
                if whole {
                    last_whole = Some(tokio::time::Instant::now());
                }
                let next = this.dispatch(whole).await.unwrap_or_else(|e| {
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

    /// Hands every due entry not yet taken to its channel's gate: the entries written since the
    /// last pass (the store tells them), then those that fell due since (read from the queue
    /// from where the last pass stopped), or, for a `whole` pass, all of them; only the entries
    /// of tenants whose partitions this node holds. Answers when the next entry falls due.
    async fn dispatch(self: &Arc<Self>, whole: bool) -> StoreResult<Option<Timestamp>> {
        let written = self.store.take_queued();
        // Whatever was queued is durable before its first attempt.
        self.store.flush().await?;
        let now = self.clock.now();
        let whole = whole || written.is_none() || self.backlog.swap(false, Ordering::Relaxed);
        let ours = |entry: &QueueEntry| self.cluster.owns(&entry.tenant);
        // The tenants take turns: a tenant that queued many does not hold back the others'.
        let written: Vec<&QueueEntry> = written.iter().flatten().filter(|e| ours(e) && e.due <= now).collect();
        let tenants: Vec<&str> = written.iter().map(|e| e.tenant.as_str()).collect();
        for i in group::round_robin(&tenants) {
            if !self.offer(written[i])? {
                return Ok(None);
            }
        }
        let from = if whole { None } else { self.cursor.lock().expect("cursor lock").clone() };
        let mut next = None;
        for entry in self.store.queue_from(from.as_ref()) {
            let entry = entry?;
            if entry.due > now {
                next = Some(entry.due);
                break;
            }
            if ours(&entry) && !self.offer(&entry)? {
                return Ok(None);
            }
        }
        *self.cursor.lock().expect("cursor lock") = Some(QueueEntry::first_at(now));
        Ok(next)
    }

    /// Hands a due queue entry to its channel's gate, unless it has it already. When the gate is
    /// full (or already left entries behind) the entry stays in the queue and the gate reads on
    /// from it later. False when `MAX_DISPATCHED` are under way (see `backlog`).
    fn offer(self: &Arc<Self>, entry: &QueueEntry) -> StoreResult<bool> {
        {
            let dispatched = self.dispatched.lock().expect("dispatch lock");
            if dispatched.contains(entry) {
                return Ok(true);
            }
            if dispatched.len() >= MAX_DISPATCHED {
                self.backlog.store(true, Ordering::Relaxed);
                return Ok(false);
            }
        }
        let gate = self.gate(&entry.tenant, &entry.channel)?;
        let mut state = gate.state.lock().expect("gate lock");
        if state.left_from.is_some() || state.waiting.len() >= gate.capacity() {
            state.leave(entry);
            self.read_on_if_room(&gate, &mut state);
        } else {
            self.take(&gate, &mut state, entry.clone());
        }
        Ok(true)
    }

    /// Gives `key` to `gate`, starting a runner when it may run more.
    fn take(self: &Arc<Self>, gate: &Arc<Gate>, state: &mut GateState, entry: QueueEntry) {
        self.dispatched.lock().expect("dispatch lock").insert(entry.clone());
        state.waiting.push_back(entry);
        if state.runners < gate.max_in_flight {
            state.runners += 1;
            let (this, gate) = (self.clone(), gate.clone());
            tokio::spawn(async move { this.run(gate).await });
        }
    }

    /// Makes the gate's attempts one after another until it has none waiting.
    async fn run(self: Arc<Self>, gate: Arc<Gate>) {
        loop {
            let entry = {
                let mut state = gate.state.lock().expect("gate lock");
                let Some(entry) = state.waiting.pop_front() else {
                    state.runners -= 1;
                    return;
                };
                self.read_on_if_room(&gate, &mut state);
                entry
            };
            gate.pace().await;
            {
                let _global = self.global.acquire().await.expect("never closed");
                if let Err(e) = self.attempt(&entry).await {
                    let QueueEntry { tenant, notification, channel, .. } = &entry;
                    tracing::error!(error = %e, %tenant, %notification, %channel, "delivery attempt not recorded");
                }
            }
            let dispatched = {
                let mut dispatched = self.dispatched.lock().expect("dispatch lock");
                dispatched.remove(&entry);
                dispatched.len()
            };
            if dispatched <= MAX_DISPATCHED / 2 && self.backlog.load(Ordering::Relaxed) {
                self.wake();
            }
        }
    }

    /// Starts reading the queue on from the gate's mark, when it left entries behind, has room
    /// for half as many as it holds, and no read is under way.
    fn read_on_if_room(self: &Arc<Self>, gate: &Arc<Gate>, state: &mut GateState) {
        if state.left_from.is_none() || state.reading_on || state.waiting.len() > gate.capacity() / 2 {
            return;
        }
        state.reading_on = true;
        let (this, gate) = (self.clone(), gate.clone());
        tokio::spawn(async move {
            loop {
                let read = this.read_on(&gate).await;
                if let Err(e) = &read {
                    // What it left behind is found by the next whole pass.
                    tracing::error!(error = %e, tenant = %gate.tenant, channel = %gate.channel, "reading the delivery queue failed");
                }
                let mut state = gate.state.lock().expect("gate lock");
                if read.is_err() || state.left_from.is_none() || state.waiting.len() > gate.capacity() / 2 {
                    state.reading_on = false;
                    return;
                }
            }
        });
    }

    /// Takes the gate's due entries from its mark on, until it is full again or none is left.
    async fn read_on(self: &Arc<Self>, gate: &Arc<Gate>) -> StoreResult<()> {
        let Some(from) = gate.state.lock().expect("gate lock").left_from.take() else { return Ok(()) };
        self.store.flush().await?;
        let now = self.clock.now();
        for entry in self.store.queue_from(Some(&from)) {
            let entry = entry?;
            if entry.due > now {
                break;
            }
            if entry.tenant != gate.tenant
                || entry.channel != gate.channel
                || self.dispatched.lock().expect("dispatch lock").contains(&entry)
            {
                continue;
            }
            let mut state = gate.state.lock().expect("gate lock");
            if state.waiting.len() >= gate.capacity() {
                state.leave(&entry);
                break;
            }
            self.take(gate, &mut state, entry);
        }
        Ok(())
    }

    fn gate(&self, tenant: &str, channel: &str) -> StoreResult<Arc<Gate>> {
        if let Some(gate) = self.gates.lock().expect("gates lock").get(tenant).and_then(|g| g.get(channel)) {
            return Ok(gate.clone());
        }
        let (max_in_flight, rate) = match self.channels.get(tenant, channel)? {
            Some(c) => (c.spec.max_in_flight, c.spec.rate_per_second),
            None => (1, None),
        };
        let gate = Arc::new(Gate::new(tenant, channel, max_in_flight, rate));
        let mut gates = self.gates.lock().expect("gates lock");
        gates.entry(tenant.to_string()).or_default().insert(channel.to_string(), gate.clone());
        Ok(gate)
    }

    /// A channel as stored now: decoded again only when its bytes changed.
    fn channel(&self, tenant: &str, id: &str) -> StoreResult<Option<Channel>> {
        let Some(bytes) = self.store.channels.get_bytes(tenant, id)? else { return Ok(None) };
        let mut cache = self.channel_cache.lock().expect("channel cache lock");
        let key = (tenant.to_string(), id.to_string());
        if let Some((seen, channel)) = cache.get(&key)
            && *seen == bytes
        {
            return Ok(Some(channel.clone()));
        }
        let channel: Channel = self.store.channels.decode(tenant, id, &bytes)?;
        cache.insert(key, (bytes, channel.clone()));
        Ok(Some(channel))
    }

    /// A channel's limits changed, or it is gone: its next attempt makes a new gate (and its
    /// cached decoding goes with it).
    pub fn forget_gate(&self, tenant: &str, channel: &str) {
        if let Some(gates) = self.gates.lock().expect("gates lock").get_mut(tenant) {
            gates.remove(channel);
        }
        self.channel_cache.lock().expect("channel cache lock").remove(&(tenant.to_string(), channel.to_string()));
    }

    async fn attempt(&self, entry: &QueueEntry) -> StoreResult<()> {
        let QueueEntry { due, tenant, channel: channel_id, .. } = entry;
        let (due, tenant, channel_id) = (*due, tenant.as_str(), channel_id.as_str());
        // Queue keys keep microseconds.
        let is_due = |d: &Delivery| d.next_attempt_at.map(|at| at.as_microsecond()) == Some(due.as_microsecond());
        let stored = super::of_entry(&self.store, entry)?;
        let Some((mut delivery, notification)) = stored.filter(|(d, _)| d.status == Status::Pending && is_due(d))
        else {
            // A leftover of a deleted tenant or notification, or of a delivery already moved on.
            return self.store.dequeue(entry);
        };
        let now = self.clock.now();
        let channel = self.channel(tenant, channel_id)?;
        let sent = match &channel {
            None => Sent::refused("the channel was deleted"),
            Some(c) if !c.spec.enabled => Sent::refused(match &c.disabled_reason {
                Some(reason) => format!("the channel is disabled: {reason}"),
                None => "the channel is disabled".to_string(),
            }),
            Some(c) => match self.payload(tenant, c, &mut delivery, notification).await {
                Ok(payload) => self.send(tenant, c, &delivery.message_id, &payload, now).await,
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
        // When it fell due: its first attempt's due time (a digest's is when it is sent).
        let fell_due = delivery.attempts.first().map_or(due, |first| first.at);
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
        let record = write(tenant, &delivery, Some(due), report);
        self.recorder.submit(record, move |round| group::each(round.len(), store.save_deliveries(&round))).await?;
        let duration_ms = delivery.attempts.last().map_or(0.0, |a| a.duration_ms);
        self.store.tally(tenant, now, |minute| match verdict {
            Verdict::Delivered => {
                minute.delivered_after(now.duration_since(fell_due).as_secs_f64() * 1e3 + duration_ms)
            }
            Verdict::Retry | Verdict::Failed => minute.failed_at(channel_id),
        });
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
        let Some(n) = self.store.notification(tenant, &delivery.notification_id)? else { return Ok(None) };
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

    /// One attempt of `payload`: a plugin channel's requests judged by its plugin, anything else
    /// as its kind is sent.
    async fn send(&self, tenant: &str, channel: &Channel, message_id: &str, payload: &Payload, now: Timestamp) -> Sent {
        match payload {
            Payload::Requests { requests } => self.senders.requests(&self.renderer, tenant, channel, requests).await,
            other => self.senders.send(channel, message_id, other, now).await,
        }
    }

    /// The delivery's payload: rendered at its first attempt (from `notification`, when it was
    /// read already), then kept.
    async fn payload(
        &self,
        tenant: &str,
        channel: &Channel,
        delivery: &mut Delivery,
        notification: Option<Notification>,
    ) -> Result<Payload, String> {
        if let Some(payload) = &delivery.payload {
            return Ok(payload.clone());
        }
        let mut notification = match notification {
            Some(n) => n,
            None => self
                .store
                .notification(tenant, &delivery.notification_id)
                .map_err(|e| e.to_string())?
                .ok_or("the notification was deleted")?,
        };
        self.collect(tenant, &mut notification).map_err(|e| e.to_string())?;
        let payload = match self.renderer.render(tenant, channel, &notification, &delivery.audience).await {
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
            if let Some(member) = self.store.notification(tenant, id)? {
                items.push(DigestItem {
                    headline: Summary::of(&member).headline,
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

    /// After a real attempt: the channel's health is recorded, and a channel this attempt
    /// disabled is reported (a `channel.disabled` system event).
    fn record_health(
        &self,
        tenant: &str,
        channel: &str,
        ok: bool,
        error: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        if self.channels.record_attempt(tenant, channel, ok, error, now, self.disable_after)?.is_some() {
            tracing::warn!(%tenant, %channel, "channel failing for too long; disabled");
            self.system_due.notify_one();
        }
        Ok(())
    }

    /// Renders a sample notification for `channel` (and `audience`) and sends it once,
    /// recording nothing.
    pub async fn test(&self, tenant: &str, channel: &Channel, audience: &Audience) -> Result<TestSend, DeliveryError> {
        let now = self.clock.now();
        let render::Sample { notification, placeholders } = render::sample_for(&channel.spec, tenant, now);
        let payload =
            self.renderer.render(tenant, channel, &notification, audience).await?.map_err(DeliveryError::Invalid)?;
        let message_id = format!("msg_test_{:016x}", rand::random::<u64>());
        let sent = self.send(tenant, channel, &message_id, &payload, now).await;
        let verdict = sent.verdict;
        Ok(TestSend { payload, placeholders, attempt: Attempt::new(1, now, sent, verdict, None) })
    }

    /// Queues a notification's finished deliveries again (all, or the one to `channel`), with
    /// the same `webhook-id` and a fresh rendering and retry period.
    pub async fn resend(&self, tenant: &str, notification: &str, channel: Option<&str>) -> StoreResult<Vec<Delivery>> {
        let now = self.clock.now();
        let mut queued = Vec::new();
        let Some(n) = self.store.notification(tenant, notification)? else { return Ok(Vec::new()) };
        for mut delivery in super::of_notification(&self.store, tenant, &n)? {
            if channel.is_some_and(|c| c != delivery.channel_id) || delivery.status == Status::Pending {
                continue;
            }
            delivery.status = Status::Pending;
            delivery.error = None;
            delivery.payload = None;
            delivery.give_up_at = Some(now.saturating_add(self.give_up_after).expect("bounded"));
            delivery.next_attempt_at = Some(now);
            self.store.save_deliveries(&[write(tenant, &delivery, None, None)])?;
            queued.push(delivery);
        }
        self.store.flush().await?;
        self.wake();
        Ok(queued)
    }
}
