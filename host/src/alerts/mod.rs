//! The rules engine: aggregates kept per time bucket as events arrive, alert state per (rule,
//! scope key), and the scheduler that drives what time alone changes. Everything an event
//! changes is written in the same store transaction as the event itself, so a crash never
//! leaves an event counted twice or not at all.

pub mod counts;
mod evaluate;
mod scheduler;
pub mod state;
mod work;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::{Mutex, Notify};

use crate::clock::SharedClock;
use crate::cluster::Cluster;
use crate::cohorts::{Cohorts, Listener};
use crate::context::AlertState;
use crate::notifications::Notifications;
use crate::plugins::Plugins;
use crate::records::{Customer, Event};
use crate::rules::{ALL, Condition, Rule, Rules, Scope};
use crate::series::window::{CalendarUnit, Span, WindowSpec};
use crate::store::{self, Store, StoreResult, TxResult};
use crate::tenants::Tenants;
use state::{AlertRecord, Outcome, TransitionRecord};
pub use work::Work;

/// A rule ready to evaluate.
pub struct Compiled {
    pub rule: Rule,
    pub span: Span,
}

impl Compiled {
    fn new(rule: Rule) -> Self {
        let spec = &rule.spec;
        let window = match &spec.condition {
            Condition::Threshold { window, .. }
            | Condition::PercentChange { window, .. }
            | Condition::Steps { window, .. } => Some(*window),
            Condition::Balance { window, .. } | Condition::Plugin { window, .. } => *window,
            _ => None,
        };
        let span = match (&spec.condition, spec.condition.anomaly_plan()) {
            // Buckets that move one at a time, each judged once it is complete.
            (_, Some(plan)) => Span::Rolling { slice: plan.bucket.seconds(), slices: 1 },
            // Hourly buckets, from which the period's sum and the rate are read.
            (Condition::Forecast { .. }, None) => {
                Span::new(Some(&WindowSpec::Calendar(CalendarUnit::Hour)), &spec.timezone)
            }
            (_, None) => Span::new(window.as_ref(), &spec.timezone),
        };
        Compiled { rule, span }
    }

    /// The oldest bucket an alert of this rule still needs at `now`: an anomaly rule's whole
    /// history, a forecast's period and lookback, the windows of the others.
    fn oldest_kept(&self, now: jiff::Timestamp) -> i64 {
        if let Condition::Forecast { window, lookback, .. } = &self.rule.spec.condition {
            let period = Span::new(Some(window), &self.rule.spec.timezone).current(now);
            return period.first.min(self.span.bucket(now - lookback.0));
        }
        match self.rule.spec.condition.anomaly_plan() {
            Some(plan) => plan.oldest(self.span.bucket(now) - plan.bucket.seconds()),
            None => self.span.oldest_kept(now),
        }
    }

    /// Whether time alone moves this rule's windows (so the scheduler re-evaluates its alerts
    /// when they move).
    fn has_moving_windows(&self) -> bool {
        !matches!(self.span, Span::Ever)
    }

    /// When the scheduler next looks at the rule as a whole: its windows move, or (a cohort
    /// rule) its batch is due.
    fn next_tick(&self, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
        match &self.rule.spec.condition {
            Condition::Cohort { batch_interval, .. } => Some(now + batch_interval.0),
            _ if self.has_moving_windows() => self.span.next_move(now),
            _ => None,
        }
    }
}

/// A tenant's enabled rules, indexed by the event types and the cohorts they watch.
#[derive(Default)]
pub struct TenantRules {
    rules: Vec<Arc<Compiled>>,
    by_type: HashMap<String, Vec<usize>>,
    every_event: Vec<usize>,
    by_cohort: HashMap<String, Vec<Listener>>,
}

impl TenantRules {
    fn new(rules: Vec<Rule>) -> Self {
        let mut index = TenantRules::default();
        for rule in rules.into_iter().filter(|r| r.spec.enabled) {
            let i = index.rules.len();
            let types: Vec<String> = match &rule.spec.condition {
                Condition::Threshold { metric, .. }
                | Condition::PercentChange { metric, .. }
                | Condition::Steps { metric, .. }
                | Condition::Balance { metric, .. }
                | Condition::Anomaly { metric, .. }
                | Condition::Forecast { metric, .. }
                | Condition::Plugin { metric: Some(metric), .. } => metric.event_types.clone(),
                Condition::EventMatch { matches } => matches.iter().map(|p| p.event_type.clone()).collect(),
                Condition::Inactivity { event_types, .. } if !event_types.is_empty() => event_types.clone(),
                Condition::Inactivity { .. } | Condition::Plugin { metric: None, .. } => {
                    index.every_event.push(i);
                    Vec::new()
                }
                Condition::Cohort { cohort, on, .. } => {
                    let listener = Listener { rule: rule.id.clone(), on: on.clone() };
                    index.by_cohort.entry(cohort.clone()).or_default().push(listener);
                    Vec::new()
                }
                Condition::Offset { .. } => Vec::new(),
            };
            for t in types {
                let entry = index.by_type.entry(t).or_default();
                if entry.last() != Some(&i) {
                    entry.push(i);
                }
            }
            index.rules.push(Arc::new(Compiled::new(rule)));
        }
        index
    }

    /// The rules a tenant event of this type may concern.
    fn for_type(&self, event_type: &str) -> impl Iterator<Item = &Compiled> {
        self.typed(event_type).iter().chain(&self.every_event).map(|i| &*self.rules[*i])
    }

    /// The alerts (rule id, scope key) `event` of `customer` may change.
    pub fn alerts_of(&self, event: &Event, customer: &Customer) -> Vec<(String, String)> {
        self.for_type(&event.event_type)
            .filter_map(|rule| Some((rule.rule.id.clone(), rule.rule.spec.scope.key_for(customer)?)))
            .collect()
    }

    /// Whether some rule names this event type.
    pub fn watches(&self, event_type: &str) -> bool {
        !self.typed(event_type).is_empty()
    }

    /// The rules that name this event type (only `event_match` rules name system types).
    fn typed(&self, event_type: &str) -> &[usize] {
        self.by_type.get(event_type).map_or(&[][..], Vec::as_slice)
    }

    /// The rules that report a cohort's changes.
    pub fn cohort_listeners(&self, cohort: &str) -> &[Listener] {
        self.by_cohort.get(cohort).map_or(&[][..], Vec::as_slice)
    }

    fn get(&self, id: &str) -> Option<Arc<Compiled>> {
        self.rules.iter().find(|c| c.rule.id == id).cloned()
    }
}

pub struct Alerts {
    store: Store,
    rules: Rules,
    tenants: Tenants,
    plugins: Arc<Plugins>,
    cohorts: Arc<Cohorts>,
    clock: SharedClock,
    cache: RwLock<HashMap<String, Arc<TenantRules>>>,
    /// Where the notifications alerts raise go.
    notifications: Arc<Notifications>,
    /// Which tenants' timers this node runs.
    cluster: Arc<Cluster>,
    /// One scheduler pass at a time.
    running: Mutex<()>,
    wake: Notify,
}

/// One alert, as `GET /v1/rules/{id}/states` shows it.
#[derive(Debug, Serialize)]
pub struct AlertView {
    pub scope_key: String,
    #[serde(flatten)]
    pub record: AlertRecord,
}

/// A dry run's finding for one alert.
#[derive(Debug, Serialize)]
pub struct DryRun {
    pub scope_key: String,
    pub state: AlertState,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Whether evaluating for real now would notify.
    pub would_notify: bool,
}

/// Why a dry run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Plugin(String),
}

const MAX_DRY_RUN_KEYS: usize = 100;
/// Customers seeded per transaction when a rule is saved.
const SEED_CHUNK: usize = 500;

impl Alerts {
    pub fn new(
        store: Store,
        tenants: Tenants,
        plugins: Arc<Plugins>,
        cohorts: Arc<Cohorts>,
        clock: SharedClock,
        notifications: Arc<Notifications>,
        cluster: Arc<Cluster>,
    ) -> StoreResult<Self> {
        counts::rebuild_if_missing(&store)?;
        Ok(Alerts {
            rules: Rules::new(store.clone()),
            store,
            tenants,
            plugins,
            cohorts,
            clock,
            cache: RwLock::default(),
            running: Mutex::new(()),
            wake: Notify::new(),
            notifications,
            cluster,
        })
    }

    /// How many of the rule's alerts are in each state.
    pub fn state_counts(&self, tenant: &str, rule: &str) -> StoreResult<counts::StateCounts> {
        Ok(self.store.alert_counts(tenant, rule)?.unwrap_or_default())
    }

    /// How many alerts are in alarm now: `rule`'s, or all the tenant's.
    pub fn in_alarm(&self, tenant: &str, rule: Option<&str>) -> StoreResult<u64> {
        Ok(match rule {
            Some(rule) => self.state_counts(tenant, rule)?.in_alarm,
            None => self.store.tenant_alert_counts::<counts::StateCounts>(tenant)?.iter().map(|c| c.in_alarm).sum(),
        })
    }

    /// The tenant's rules, loaded once and kept until one of them changes.
    pub fn tenant_rules(&self, tenant: &str) -> StoreResult<Arc<TenantRules>> {
        if let Some(rules) = self.cache.read().expect("rule cache lock").get(tenant) {
            return Ok(rules.clone());
        }
        self.load(tenant, false)
    }

    fn reload(&self, tenant: &str) -> StoreResult<Arc<TenantRules>> {
        self.load(tenant, true)
    }

    /// Reads the tenant's rules into the cache (unless they are there and `fresh` is not
    /// asked). Under the write lock, so a concurrent save is never overwritten by an older list.
    fn load(&self, tenant: &str, fresh: bool) -> StoreResult<Arc<TenantRules>> {
        let mut cache = self.cache.write().expect("rule cache lock");
        if !fresh && let Some(rules) = cache.get(tenant) {
            return Ok(rules.clone());
        }
        let rules = Arc::new(TenantRules::new(self.rules.list(tenant)?));
        cache.insert(tenant.to_string(), rules.clone());
        Ok(rules)
    }

    /// The scope keys of a rule's alerts, in key order, at most `limit`.
    fn scope_keys(&self, tenant: &str, rule: &str, limit: usize) -> StoreResult<Vec<String>> {
        self.store.scope_keys(tenant, rule, limit)
    }

    /// Evaluates one accepted event inside the ingest transaction.
    pub fn on_event(&self, work: &mut Work, rules: &TenantRules, event: &Event, customer: &Customer) -> TxResult<()> {
        for rule in rules.for_type(&event.event_type) {
            evaluate::on_event(work, rule, event, customer)?;
        }
        Ok(())
    }

    /// Matches a system event against the `event_match` rules that name its type. Without a
    /// customer, only rules over all customers see it.
    pub fn on_system_event(
        &self,
        work: &mut Work,
        rules: &TenantRules,
        event: &Event,
        customer: Option<&Customer>,
    ) -> TxResult<()> {
        for i in rules.typed(&event.event_type) {
            evaluate::on_system_event(work, &rules.rules[*i], event, customer);
        }
        Ok(())
    }

    /// Wakes the scheduler (work was queued for it).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A rule was created or replaced: its old alerts and their aggregates go (they measured another
    /// condition), then what time drives is scheduled: its windows' moves, inactivity deadlines
    /// and offset moments for the customers in scope.
    pub fn rule_saved(&self, tenant: &str, rule: &Rule) -> StoreResult<()> {
        self.forget_alerts(tenant, &rule.id, false)?;
        let rules = self.reload(tenant)?;
        let Some(compiled) = rules.get(&rule.id) else { return Ok(()) };
        let now = self.clock.now();
        if let Some(next) = compiled.next_tick(now) {
            self.store.set_timer(next, tenant, &rule.id, "", &rule.updated_at.to_string())?;
        }
        if !rule.spec.condition.is_timed_per_key() {
            return Ok(());
        }
        let routing = self.notifications.routing(tenant)?;
        let seed_key = |work: &mut Work, scope: &str| seed(work, &compiled, scope);
        match &rule.spec.scope {
            Scope::All => self.store.transact(|tx| {
                let mut work = Work::new(tx, tenant, now);
                seed_key(&mut work, ALL)?;
                work.finish(&routing)
            }),
            Scope::Customer { customer_id } => self.store.transact(|tx| {
                let mut work = Work::new(tx, tenant, now);
                if work.customer(customer_id)?.is_some() || matches!(rule.spec.condition, Condition::Inactivity { .. })
                {
                    seed_key(&mut work, customer_id)?;
                }
                work.finish(&routing)
            }),
            Scope::Each | Scope::Group { .. } => {
                let customers: Vec<Customer> = self.store.customers(tenant, None, usize::MAX)?;
                let in_scope: Vec<String> = customers.iter().filter_map(|c| rule.spec.scope.key_for(c)).collect();
                for chunk in in_scope.chunks(SEED_CHUNK) {
                    self.store.transact(|tx| {
                        let mut work = Work::new(tx, tenant, now);
                        for scope in chunk {
                            seed_key(&mut work, scope)?;
                        }
                        work.finish(&routing)
                    })?;
                }
                Ok(())
            }
        }
    }

    /// A customer was created or changed, inside the transaction that stores it: offset
    /// moments and inactivity tracking follow its fields.
    pub fn customer_saved(&self, work: &mut Work, rules: &TenantRules, customer: &Customer) -> TxResult<()> {
        let watching = rules.rules.iter().filter(|c| c.rule.spec.condition.is_timed_per_key());
        for rule in watching.filter(|c| !matches!(c.rule.spec.scope, Scope::All)) {
            if let Some(scope) = rule.rule.spec.scope.key_for(customer) {
                seed(work, rule, &scope)?;
            }
        }
        Ok(())
    }

    /// A customer is being deleted, inside the transaction that removes it: its alerts go
    /// (their timers lapse on their own).
    pub fn customer_deleted(&self, work: &Work, rules: &TenantRules, customer: &str) -> TxResult<()> {
        for rule in &rules.rules {
            if let Some(bytes) = work.tx().delete_alert(work.tenant, &rule.rule.id, customer)? {
                let standing = state::stored::decode(&bytes).map(|(record, _)| counts::Standing::of(&record));
                counts::apply(work.tx(), work.tenant, &rule.rule.id, work.now, [(standing, None)])?;
            }
        }
        Ok(())
    }

    /// Removes a rule's alerts and history (its timers lapse on their own).
    pub fn rule_deleted(&self, tenant: &str, id: &str) -> StoreResult<()> {
        self.forget_alerts(tenant, id, true)?;
        self.reload(tenant).map(|_| ())
    }

    /// Removes a rule's alerts (and its history with `history`), tallying those in alarm as
    /// having left it.
    fn forget_alerts(&self, tenant: &str, rule: &str, history: bool) -> StoreResult<()> {
        let in_alarm = self.state_counts(tenant, rule)?.in_alarm as i64;
        self.store.forget_rule(tenant, rule, history)?;
        if in_alarm > 0 {
            self.store.tally(tenant, self.clock.now(), |minute| minute.alarms_changed(rule, -in_alarm));
        }
        Ok(())
    }

    /// Forgets the cached rules of a deleted tenant.
    pub fn forget_tenant(&self, tenant: &str) {
        self.cache.write().expect("rule cache lock").remove(tenant);
    }

    /// A rule's alerts (optionally one scope key's) and its newest transitions.
    pub fn states(
        &self,
        tenant: &str,
        rule: &str,
        scope: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<AlertView>, Vec<TransitionRecord>)> {
        let mut alerts = Vec::new();
        for alert in self.store.alerts_of(tenant, rule) {
            let (scope_key, bytes) = alert?;
            if scope.is_some_and(|s| s != scope_key) {
                continue;
            }
            let (record, _) = state::stored::decode(&bytes)
                .ok_or_else(|| store::corrupt(format!("{rule}/{scope_key}"), "an alert"))?;
            alerts.push(AlertView { scope_key, record });
            if alerts.len() == limit {
                break;
            }
        }
        let mut transitions = Vec::new();
        for transition in self.store.transitions_newest_first::<TransitionRecord>(tenant, rule) {
            let transition = transition?;
            if scope.is_none_or(|s| s == transition.scope_key) {
                transitions.push(transition);
                if transitions.len() == limit {
                    break;
                }
            }
        }
        Ok((alerts, transitions))
    }

    /// Evaluates a rule now without changing anything: for one customer, or for the whole
    /// scope (the alerts it has, up to 100).
    pub async fn dry_run(
        &self,
        tenant: &str,
        rule: &Rule,
        customer_id: Option<&str>,
        event: Option<&Event>,
    ) -> Result<Vec<DryRun>, DryRunError> {
        let compiled = Compiled::new(rule.clone());
        let now = self.clock.now();
        let scopes: Vec<String> = match (customer_id, &rule.spec.scope) {
            (Some(id), scope) => {
                let customer = self
                    .store
                    .customer::<Customer>(tenant, id)?
                    .ok_or_else(|| DryRunError::Invalid(format!("customer_id: there is no customer `{id}`")))?;
                vec![scope.key_for(&customer).ok_or_else(|| {
                    DryRunError::Invalid(format!("customer_id: customer `{id}` is not in the rule's scope"))
                })?]
            }
            (None, Scope::All) => vec![ALL.to_string()],
            (None, Scope::Customer { customer_id }) => vec![customer_id.clone()],
            (None, _) => self.scope_keys(tenant, &rule.id, MAX_DRY_RUN_KEYS)?,
        };
        let mut results = Vec::new();
        for scope in scopes {
            let (mut outcome, record, customer) = self.store.transact(|tx| {
                let mut work = Work::new(tx, tenant, now);
                let customer = evaluate::scope_customer(&mut work, &scope)?;
                let outcome = evaluate::outcome(&mut work, &compiled, &scope, customer.as_ref())?;
                let record = work.alert(&rule.id, &scope)?.cloned().unwrap_or_else(|| AlertRecord::new(now));
                Ok((outcome, record, customer))
            })?;
            match &rule.spec.condition {
                Condition::EventMatch { matches } => {
                    let event = event.ok_or_else(|| {
                        DryRunError::Invalid("event: an event_match rule is tried against an `event`".into())
                    })?;
                    let blank = || Customer::blank(event.customer_id.as_deref().unwrap_or_default(), now);
                    let customer = customer.clone().unwrap_or_else(blank);
                    outcome.firing = matches.iter().any(|p| p.matches(event, &customer));
                }
                Condition::Plugin { .. } => {
                    outcome = self
                        .plugin_outcome(tenant, &compiled, &scope)
                        .await
                        .map_err(DryRunError::Plugin)?
                        .ok_or_else(|| DryRunError::Plugin("the rule's plugin is missing or disabled".into()))?;
                }
                _ => {}
            }
            let would_notify = match &rule.spec.condition {
                Condition::EventMatch { .. } => outcome.firing,
                _ => !state::apply(&rule.spec, &mut record.clone(), &outcome, now).0.is_empty(),
            };
            results.push(DryRun { scope_key: scope, state: record.state, outcome, would_notify });
        }
        Ok(results)
    }
}

/// Starts tracking an alert that time drives (inactivity, offset) and evaluates it.
fn seed(work: &mut Work, rule: &Compiled, scope: &str) -> TxResult<()> {
    if let Condition::Inactivity { .. } = rule.rule.spec.condition {
        let mut record = work.take_alert(&rule.rule.id, scope)?;
        // Quiet since the rule (or the customer) appeared.
        record.last_seen = record.last_seen.or(Some(work.now));
        work.put_alert(&rule.rule.id, scope, record)?;
    }
    evaluate::evaluate(work, rule, scope)
}
