//! Backtests: an unsaved rule tried against the events a tenant already sent. The rule runs in a
//! sandbox (a throwaway embedded store holding a copy of the tenant's record, customers and, for
//! a plugin condition, its plugins), through the real pipeline (ingest, alerts, notifications)
//! on a clock of its own: each stored batch of events is sent again at the time it was received,
//! the timers that fell due before it run at their own moments, and what the rule would have
//! notified is read back. Nothing reaches the real store, no channel is sent to, and a plugin
//! keeps its key-value entries in the sandbox. A long backtest runs as a job in the background.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use crate::alerts::Alerts;
use crate::clock::{Clock, ManualClock, SharedClock};
use crate::cluster::{Cluster, ClusterConfig};
use crate::cohorts::Cohorts;
use crate::context::Transition;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::notifications::Notifications;
use crate::plugins::{Engine, Plugins};
use crate::records::Event;
use crate::records::notification::Kind;
use crate::rules::{Condition, Rule, RuleSpec, Rules};
use crate::store::{Store, StoreError};
use crate::tenants::Tenants;

/// A backtest longer than this, or over more events, runs as a job.
pub const MAX_INLINE_SPAN: SignedDuration = SignedDuration::from_hours(10 * 24);
pub const MAX_INLINE_EVENTS: usize = 100_000;
/// The most events one backtest replays.
pub const MAX_EVENTS: usize = 2_000_000;
/// Jobs a tenant may have running at once.
pub const MAX_RUNNING_JOBS: usize = 2;
/// The notifications a report lists (its counts cover all of them).
const MAX_LISTED: usize = 1000;
/// How long a finished job's report is kept.
const KEEP_FINISHED: SignedDuration = SignedDuration::from_hours(1);
/// The sandboxes' folders in the data folder start so (a crash may leave one; the next start
/// removes it).
const SANDBOX_PREFIX: &str = "backtest-";

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The request cannot be backtested: the field at fault and why.
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error("a tenant may run {MAX_RUNNING_JOBS} backtest jobs at once; wait for one to finish or cancel one")]
    TooManyJobs,
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Sandbox(String),
}

pub type BacktestResult<T> = Result<T, BacktestError>;

fn sandbox_error(error: impl std::fmt::Display) -> BacktestError {
    BacktestError::Sandbox(format!("the backtest's sandbox: {error}"))
}

/// What to backtest: a rule of `tenant` over its events from `since` to `until` (by their
/// timestamps), each replayed at the time it was received.
pub struct Request {
    pub tenant: String,
    pub spec: RuleSpec,
    pub since: Timestamp,
    pub until: Timestamp,
}

/// One notification the rule would have sent.
#[derive(Debug, Clone, Serialize)]
pub struct WouldSend {
    pub at: Timestamp,
    pub kind: Kind,
    pub scope_key: String,
    pub customer_id: Option<String>,
    pub state: Transition,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
}

/// What a backtest found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub since: Timestamp,
    pub until: Timestamp,
    /// The events replayed.
    pub events: u64,
    /// How many notifications it would have sent, by kind.
    pub counts: BTreeMap<String, u64>,
    /// The first 1,000 of them, oldest first.
    pub notifications: Vec<WouldSend>,
    pub truncated: bool,
    /// Notifications per UTC day, every day of the range listed.
    pub per_day: Vec<DayCount>,
    /// Notifications per customer, most first.
    pub per_customer: Vec<CustomerCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayCount {
    pub day: jiff::civil::Date,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomerCount {
    pub customer_id: String,
    pub count: u64,
}

/// A job's state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum JobState {
    Running,
    Done { report: Report },
    Failed { error: String },
    Cancelled,
}

/// A backtest running (or run) in the background.
pub struct Job {
    pub id: String,
    pub tenant: String,
    pub since: Timestamp,
    pub until: Timestamp,
    pub created_at: Timestamp,
    progress: Progress,
    /// Where it stands, and when it ended.
    state: Mutex<(JobState, Option<Timestamp>)>,
}

/// How far a replay got, and whether to stop.
#[derive(Default)]
struct Progress {
    total: AtomicU64,
    replayed: AtomicU64,
    cancel: AtomicBool,
}

/// A job as `GET /v1/backtests/{id}` shows it.
#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: String,
    pub since: Timestamp,
    pub until: Timestamp,
    pub created_at: Timestamp,
    pub events_total: u64,
    pub events_replayed: u64,
    #[serde(flatten)]
    pub state: JobState,
}

impl Job {
    pub fn view(&self) -> JobView {
        JobView {
            id: self.id.clone(),
            since: self.since,
            until: self.until,
            created_at: self.created_at,
            events_total: self.progress.total.load(Ordering::Relaxed),
            events_replayed: self.progress.replayed.load(Ordering::Relaxed),
            state: self.state.lock().expect("job lock").0.clone(),
        }
    }

    fn running(&self) -> bool {
        matches!(self.state.lock().expect("job lock").0, JobState::Running)
    }
}

/// What a backtest request became: a report at once, or a job.
pub enum Started {
    Done(Report),
    Job(Arc<Job>),
}

pub struct Backtests {
    store: Store,
    engine: Arc<Engine>,
    clock: SharedClock,
    data_dir: PathBuf,
    event_retention: SignedDuration,
    /// The node's own: a sandbox is a cluster of one node either way.
    cluster: ClusterConfig,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

/// Where backtests run and what they may read.
pub struct Setting {
    pub store: Store,
    pub engine: Arc<Engine>,
    pub clock: SharedClock,
    pub data_dir: PathBuf,
    pub event_retention: SignedDuration,
    pub cluster: ClusterConfig,
}

impl Backtests {
    /// Removes the sandboxes a crash left in `data_dir`.
    pub fn new(setting: Setting) -> std::io::Result<Self> {
        let Setting { store, engine, clock, data_dir, event_retention, cluster } = setting;
        for entry in std::fs::read_dir(&data_dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(SANDBOX_PREFIX) {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(Backtests { store, engine, clock, data_dir, event_retention, cluster, jobs: Mutex::default() })
    }

    /// Checks the request and reads its events; runs it at once when it is short, else starts a
    /// job (refused when the tenant has too many running).
    pub async fn start(self: &Arc<Self>, request: Request) -> BacktestResult<Started> {
        let now = self.clock.now();
        self.check(&request, now)?;
        let events = self.events(&request)?;
        let inline =
            request.until.duration_since(request.since) <= MAX_INLINE_SPAN && events.len() <= MAX_INLINE_EVENTS;
        if inline {
            return self.replay(&request, events, &Progress::default()).await.map(Started::Done);
        }
        let job = {
            let mut jobs = self.jobs.lock().expect("jobs lock");
            jobs.retain(|_, job| job.state.lock().expect("job lock").1.is_none_or(|ended| now < ended + KEEP_FINISHED));
            if jobs.values().filter(|job| job.tenant == request.tenant && job.running()).count() >= MAX_RUNNING_JOBS {
                return Err(BacktestError::TooManyJobs);
            }
            let job = Arc::new(Job {
                id: crate::ids::new_id("bkt"),
                tenant: request.tenant.clone(),
                since: request.since,
                until: request.until,
                created_at: now,
                progress: Progress::default(),
                state: Mutex::new((JobState::Running, None)),
            });
            job.progress.total.store(events.len() as u64, Ordering::Relaxed);
            jobs.insert(job.id.clone(), job.clone());
            job
        };
        let (this, running) = (self.clone(), job.clone());
        tokio::spawn(async move {
            let state = match this.replay(&request, events, &running.progress).await {
                Ok(report) => JobState::Done { report },
                Err(BacktestError::Cancelled) => JobState::Cancelled,
                Err(e) => {
                    tracing::warn!(job = %running.id, error = %e, "a backtest failed");
                    JobState::Failed { error: e.to_string() }
                }
            };
            // A job cancelled meanwhile stays cancelled, whatever it came to.
            let mut slot = running.state.lock().expect("job lock");
            if matches!(slot.0, JobState::Running) {
                *slot = (state, Some(this.clock.now()));
            }
        });
        Ok(Started::Job(job))
    }

    /// The tenant's job `id`.
    pub fn job(&self, tenant: &str, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().expect("jobs lock").get(id).filter(|job| job.tenant == tenant).cloned()
    }

    /// Stops a running job (it ends `cancelled`), or forgets a finished one.
    pub fn cancel(&self, tenant: &str, id: &str) -> Option<Arc<Job>> {
        let job = self.job(tenant, id)?;
        let mut state = job.state.lock().expect("job lock");
        if matches!(state.0, JobState::Running) {
            job.progress.cancel.store(true, Ordering::Relaxed);
            *state = (JobState::Cancelled, Some(self.clock.now()));
        } else {
            self.jobs.lock().expect("jobs lock").remove(id);
        }
        drop(state);
        Some(job)
    }

    fn check(&self, request: &Request, now: Timestamp) -> BacktestResult<()> {
        let invalid = |field, message: String| Err(BacktestError::Invalid { field, message });
        if request.since >= request.until {
            return invalid("until", "must be after `since`".into());
        }
        if request.until > now {
            return invalid("until", format!("is in the future (the server's clock reads {now})"));
        }
        if request.since < now.checked_sub(self.event_retention).unwrap_or(Timestamp::MIN) {
            return invalid(
                "since",
                format!(
                    "is before the events kept ({} back; see ingest.event_retention)",
                    crate::duration::Duration(self.event_retention)
                ),
            );
        }
        if let Condition::Cohort { .. } = request.spec.condition {
            return invalid(
                "rule.condition.kind",
                "a cohort rule reports its cohort's changes, which the cohort computes: backtest a rule on the cohort's criteria instead".into(),
            );
        }
        Ok(())
    }

    /// The tenant's events of the range, in the order they were ingested.
    fn events(&self, request: &Request) -> BacktestResult<Vec<(u64, Event)>> {
        let mut events = Vec::new();
        for entry in self.store.events_since(&request.tenant, request.since) {
            let (batch, event) = entry?;
            if event.timestamp > request.until {
                break;
            }
            if event.customer_id.is_none() {
                continue;
            }
            if events.len() == MAX_EVENTS {
                return Err(BacktestError::Invalid {
                    field: "since",
                    message: format!("the range holds more than {MAX_EVENTS} events: shorten it"),
                });
            }
            events.push((batch, event));
        }
        events.sort_by_key(|(batch, event)| (*batch, event.received_at));
        Ok(events)
    }

    /// Replays `events` through the rule in a sandbox and reports what it would have sent.
    async fn replay(
        &self,
        request: &Request,
        events: Vec<(u64, Event)>,
        progress: &Progress,
    ) -> BacktestResult<Report> {
        let tenant = request.tenant.as_str();
        let plugin_rule = matches!(request.spec.condition, Condition::Plugin { .. });
        let dir = tempfile::Builder::new().prefix(SANDBOX_PREFIX).tempdir_in(&self.data_dir).map_err(sandbox_error)?;
        let store = self.store.sandbox(tenant, dir.path(), plugin_rule)?;
        let sandbox = Sandbox::new(store, self, request.since, plugin_rule).await?;
        let rule = sandbox.save(tenant, &request.spec)?;
        let mut batches = events.chunk_by(|a, b| a.0 == b.0).peekable();
        while let Some(batch) = batches.next() {
            if progress.cancel.load(Ordering::Relaxed) {
                return Err(BacktestError::Cancelled);
            }
            let received = batch.iter().map(|(_, e)| e.received_at).max().expect("a batch holds events");
            sandbox.advance(received).await?;
            let raw: Vec<Value> = batch.iter().map(|(_, e)| as_sent(e)).collect();
            sandbox.ingest.ingest(tenant, "backtest", raw).await?;
            progress.replayed.fetch_add(batch.len() as u64, Ordering::Relaxed);
            // Let other work (and a cancellation) in between batches.
            if batches.peek().is_some() {
                tokio::task::yield_now().await;
            }
        }
        sandbox.advance(request.until).await?;
        let report = sandbox.report(tenant, &rule, request, events.len() as u64);
        drop(sandbox);
        dir.close().map_err(sandbox_error)?;
        report
    }
}

/// An event as it was sent.
fn as_sent(event: &Event) -> Value {
    json!({
        "id": event.id, "customer_id": event.customer_id, "type": event.event_type,
        "timestamp": event.timestamp, "properties": event.properties,
    })
}

/// The pipeline over a sandbox store, on a clock of its own.
struct Sandbox {
    store: Store,
    clock: Arc<ManualClock>,
    alerts: Arc<Alerts>,
    ingest: Ingest,
}

impl Sandbox {
    async fn new(store: Store, backtests: &Backtests, start: Timestamp, with_plugins: bool) -> BacktestResult<Self> {
        let clock = Arc::new(ManualClock::new(start));
        let shared: SharedClock = clock.clone();
        let plugins =
            Plugins::new(store.clone(), backtests.engine.clone(), shared.clone(), Arc::new(Metrics::default()), None);
        if with_plugins {
            plugins.load_all().await.map_err(sandbox_error)?;
        }
        // The sandbox never delivers and sends no system events: nothing waits on these.
        let (deliveries, system) = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
        let tenants = Tenants::new(store.clone(), "");
        let cohorts = Arc::new(Cohorts::new(store.clone(), shared.clone(), backtests.event_retention));
        let cluster = Arc::new(Cluster::new(store.clone(), &backtests.cluster));
        let notifications = Arc::new(Notifications::new(store.clone(), shared.clone(), deliveries));
        let alerts = Arc::new(Alerts::new(
            store.clone(),
            tenants,
            plugins,
            cohorts.clone(),
            shared.clone(),
            notifications.clone(),
            cluster.clone(),
        )?);
        let ingest = Ingest::new(store.clone(), shared, alerts.clone(), cohorts, notifications, cluster, system);
        Ok(Sandbox { store, clock, alerts, ingest })
    }

    /// Saves the rule (without channels or category: the sandbox sends nothing) at the clock's
    /// time.
    fn save(&self, tenant: &str, spec: &RuleSpec) -> BacktestResult<Rule> {
        let mut spec = spec.clone();
        spec.channels.clear();
        spec.category = None;
        let rule = Rules::new(self.store.clone()).create(tenant, "backtest", spec, self.clock.now())?;
        self.alerts.rule_saved(tenant, &rule)?;
        Ok(rule)
    }

    /// Moves the clock to `to`, running each timer that falls due on the way at its own moment.
    async fn advance(&self, to: Timestamp) -> BacktestResult<()> {
        while let Some(timer) = self.store.next_timer(|_| true)? {
            if timer.due > to {
                break;
            }
            // A timer already due runs at the current time (the clock never goes back).
            let _ = self.clock.set(timer.due);
            self.alerts.run_due().await?;
        }
        let _ = self.clock.set(to);
        self.alerts.run_due().await?;
        Ok(())
    }

    /// What the rule notified in the sandbox.
    fn report(&self, tenant: &str, rule: &Rule, request: &Request, events: u64) -> BacktestResult<Report> {
        let mut sent = Vec::new();
        for notification in self.store.notifications_newest_first(tenant, None) {
            let n = notification?;
            if n.rule_id.as_deref() == Some(rule.id.as_str()) {
                sent.push(WouldSend {
                    at: n.created_at,
                    kind: n.kind,
                    scope_key: n.scope_key,
                    customer_id: n.customer_id,
                    state: n.context.state,
                    value: n.context.value,
                    threshold: n.context.threshold,
                    step: n.step,
                });
            }
        }
        sent.reverse();
        let mut counts = BTreeMap::new();
        let (mut days, mut customers) = (BTreeMap::new(), HashMap::new());
        let utc = jiff::tz::TimeZone::UTC;
        let mut day = request.since.to_zoned(utc.clone()).date();
        let last = request.until.to_zoned(utc.clone()).date();
        while day <= last {
            days.insert(day, 0);
            day = day.tomorrow().map_err(sandbox_error)?;
        }
        for n in &sent {
            *counts.entry(kind_name(n.kind)).or_insert(0) += 1;
            *days.entry(n.at.to_zoned(utc.clone()).date()).or_insert(0) += 1;
            if let Some(customer) = &n.customer_id {
                *customers.entry(customer.clone()).or_insert(0) += 1;
            }
        }
        let mut per_customer: Vec<CustomerCount> =
            customers.into_iter().map(|(customer_id, count)| CustomerCount { customer_id, count }).collect();
        per_customer.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.customer_id.cmp(&b.customer_id)));
        let truncated = sent.len() > MAX_LISTED;
        sent.truncate(MAX_LISTED);
        Ok(Report {
            since: request.since,
            until: request.until,
            events,
            counts,
            notifications: sent,
            truncated,
            per_day: days.into_iter().map(|(day, count)| DayCount { day, count }).collect(),
            per_customer,
        })
    }
}

/// A notification kind's name, as the API writes it.
fn kind_name(kind: Kind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}
