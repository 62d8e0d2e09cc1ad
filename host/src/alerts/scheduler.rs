//! The scheduler: timers kept in the store say when to look at an alert again (an inactivity
//! deadline, an offset moment, a reminder, a plugin evaluation) or at all of a rule's alerts
//! (its windows moved). Timers that fell due while the server was down run at start. A node
//! runs the timers of the tenants whose partitions it holds (`cluster`).

use std::sync::Arc;
use std::time::Duration;

use super::state::Outcome;
use super::work::Work;
use super::{Alerts, Compiled, evaluate};
use crate::cohorts::BatchEntry;
use crate::context::{AlertState, IncidentStatus};
use crate::notifications::incidents::{self, UpdateInput};
use crate::plugins::io::{Evaluation, ValuePair};
use crate::records::system;
use crate::rules::Condition;
use crate::store::group;
use crate::store::{StoreError, StoreResult, Timer, Tx, TxResult};

/// Cohort ids start with this; their timers re-judge a customer.
const COHORT_PREFIX: &str = "coh_";
/// The longest the loop sleeps before looking again (the clock may have been moved).
const POLL: Duration = Duration::from_secs(1);
/// Alerts re-evaluated per transaction when a rule's windows move.
const TICK_CHUNK: usize = 500;
/// Due timers read at once, for the tenants to take turns over.
const DUE_CHUNK: usize = 1000;

impl Alerts {
    /// Runs due timers now and whenever more fall due, until the process ends.
    pub fn spawn_scheduler(self: &Arc<Self>) {
        let alerts = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = alerts.run_due().await {
                    tracing::error!(error = %e, "scheduler pass failed; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(alerts.until_next()) => {}
                    _ = alerts.wake.notified() => {}
                }
            }
        });
    }

    fn until_next(&self) -> Duration {
        let Ok(Some(next)) = self.store.next_timer(|tenant| self.cluster.owns(tenant)) else { return POLL };
        let wait = next.due.duration_since(self.clock.now());
        Duration::try_from(wait).unwrap_or(Duration::ZERO).min(POLL)
    }

    /// Runs every timer that is due, a chunk at a time, the tenants taking turns within a chunk
    /// (a tenant with thousands due at once does not hold back another's); returns how many ran.
    pub async fn run_due(&self) -> StoreResult<usize> {
        let _one_pass = self.running.lock().await;
        let mut ran = 0;
        'pass: loop {
            let due = self.store.due_timers(self.clock.now(), DUE_CHUNK, |tenant| self.cluster.owns(tenant))?;
            if due.is_empty() {
                break;
            }
            let tenants: Vec<&str> = due.iter().map(|timer| timer.tenant.as_str()).collect();
            for timer in group::round_robin(&tenants).into_iter().map(|i| &due[i]) {
                match self.run_timer(timer).await {
                    Ok(()) => {}
                    Err(StoreError::Fenced { partition, .. }) => {
                        // The partition changed hands: its new holder runs the timer.
                        tracing::info!(partition, tenant = %timer.tenant, "a timer's partition moved; left to its holder");
                        break 'pass;
                    }
                    Err(e) => {
                        let Timer { tenant, rule, scope, .. } = timer;
                        tracing::error!(error = %e, %tenant, %rule, %scope, "a scheduled evaluation failed; dropping it");
                        self.store.remove_timer(timer)?;
                    }
                }
                ran += 1;
            }
        }
        if ran > 0 {
            self.store.flush().await?;
            self.notifications.wake_deliveries();
        }
        Ok(ran)
    }

    /// A transaction of the tenant's timed work, made under this node's lease of its partition:
    /// a node that paused past its lease writes nothing when it resumes.
    fn transact<T>(&self, tenant: &str, body: impl Fn(&Tx) -> TxResult<T>) -> StoreResult<T> {
        self.store.transact_under(self.cluster.fence(tenant)?.as_ref(), body)
    }

    async fn run_timer(&self, timer: &Timer) -> StoreResult<()> {
        let (tenant, rule, scope) = (timer.tenant.as_str(), timer.rule.as_str(), timer.scope.as_str());
        if rule.starts_with(incidents::PREFIX) {
            return self.run_maintenance_timer(timer);
        }
        let now = self.clock.now();
        let rules = self.tenant_rules(tenant)?;
        if rule.starts_with(COHORT_PREFIX) {
            return self.run_cohort_timer(timer, &rules);
        }
        let Some(compiled) = rules.get(rule) else {
            // The rule was deleted or disabled.
            return self.store.remove_timer(timer);
        };
        let is_plugin = matches!(compiled.rule.spec.condition, Condition::Plugin { .. });
        let routing = self.notifications.routing(tenant)?;
        if !scope.is_empty() {
            if is_plugin {
                return self.evaluate_plugin(Some(timer), tenant, &compiled, scope).await;
            }
            return self.transact(tenant, |tx| {
                let mut work = Work::new(tx, tenant, now);
                if !fire_timer(&mut work, timer)? {
                    return Ok(());
                }
                if work.alert(rule, scope)?.is_some() {
                    evaluate::evaluate(&mut work, &compiled, scope)?;
                }
                work.finish(&routing)
            });
        }

        // The rule's windows moved: every alert it has is evaluated again.
        if timer.tag != compiled.rule.updated_at.to_string() {
            // Scheduled for an older version of the rule; saving it scheduled its own.
            return self.store.remove_timer(timer);
        }
        let scopes = self.scope_keys(tenant, rule, usize::MAX)?;
        if let Condition::Cohort { cohort, .. } = &compiled.rule.spec.condition {
            self.send_batch(tenant, &compiled, cohort)?;
        } else if is_plugin {
            for scope in &scopes {
                self.evaluate_plugin(None, tenant, &compiled, scope).await?;
            }
        } else {
            for chunk in scopes.chunks(TICK_CHUNK) {
                self.transact(tenant, |tx| {
                    let mut work = Work::new(tx, tenant, now);
                    for scope in chunk {
                        evaluate::evaluate(&mut work, &compiled, scope)?;
                    }
                    work.finish(&routing)
                })?;
            }
        }
        let next = compiled.next_tick(now);
        self.transact(tenant, |tx| {
            if tx.take_timer(timer)?
                && let Some(next) = next
            {
                tx.set_timer(next, tenant, rule, "", &timer.tag)?;
            }
            Ok(())
        })
    }

    /// Time may have changed a customer's membership of a cohort: it is judged again.
    fn run_cohort_timer(&self, timer: &Timer, rules: &super::TenantRules) -> StoreResult<()> {
        let (tenant, cohort, customer) = (timer.tenant.as_str(), timer.rule.as_str(), timer.scope.as_str());
        let cohorts = self.cohorts.tenant(tenant)?;
        let now = self.clock.now();
        let routing = self.notifications.routing(tenant)?;
        self.transact(tenant, |tx| {
            if !tx.take_timer(timer)? {
                return Ok(());
            }
            // A deleted cohort's or customer's timer lapses.
            let Some(compiled) = cohorts.get(cohort) else { return Ok(()) };
            let mut work = Work::new(tx, tenant, now);
            if let Some(record) = work.customer_mut(customer)? {
                compiled.settle(tx, tenant, record, now, rules.cohort_listeners(cohort))?;
            }
            work.finish(&routing)
        })
    }

    /// Sends a cohort rule's batch: the entries and exits waiting for it, taken from the queue
    /// in the transaction that makes their notifications (so a crash sends them once, later).
    fn send_batch(&self, tenant: &str, rule: &Compiled, cohort: &str) -> StoreResult<()> {
        let waiting = self.store.waiting_cohort_changes(tenant, &rule.rule.id)?;
        if waiting.is_empty() {
            return Ok(());
        }
        let name = self.cohorts.get(tenant, cohort)?.map_or_else(|| cohort.to_string(), |c| c.spec.name);
        let cohort = crate::context::CohortRef { id: cohort.to_string(), name };
        let now = self.clock.now();
        let routing = self.notifications.routing(tenant)?;
        self.transact(tenant, |tx| {
            let mut entries = Vec::new();
            for customer in &waiting {
                if let Some(entry) = tx.take_cohort_change::<BatchEntry>(tenant, &rule.rule.id, customer)? {
                    entries.push(entry);
                }
            }
            let mut work = Work::new(tx, tenant, now);
            evaluate::cohort_batch(&mut work, rule, &cohort, entries);
            work.finish(&routing)
        })
    }

    /// A maintenance's window starts or ends: its status moves on and its subscribers hear,
    /// unless a client moved it on already.
    fn run_maintenance_timer(&self, timer: &Timer) -> StoreResult<()> {
        let (tenant, id, moment) = (timer.tenant.as_str(), timer.rule.as_str(), timer.scope.as_str());
        let now = self.clock.now();
        let routing = self.notifications.routing(tenant)?;
        self.transact(tenant, |tx| {
            if !tx.take_timer(timer)? {
                return Ok(());
            }
            let Some(mut maintenance) = incidents::get(tx, tenant, id)? else { return Ok(()) };
            let (status, message) = match moment {
                incidents::START if maintenance.status == IncidentStatus::Scheduled => {
                    (IncidentStatus::InProgress, "The maintenance window started.")
                }
                incidents::END if maintenance.is_open() => (IncidentStatus::Resolved, "The maintenance window ended."),
                _ => return Ok(()),
            };
            let update = UpdateInput { status: Some(status), message: Some(message.into()) };
            maintenance.update(&update, "klaxon", now);
            incidents::record(tx, tenant, &mut maintenance, &routing, now)
        })
    }

    /// Runs a plugin condition for one alert and settles its verdict. A plugin that fails
    /// leaves the alert as it was (and says why in the log).
    async fn evaluate_plugin(
        &self,
        timer: Option<&Timer>,
        tenant: &str,
        rule: &Compiled,
        scope: &str,
    ) -> StoreResult<()> {
        let outcome = match self.plugin_outcome(tenant, rule, scope).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(%tenant, rule = %rule.rule.id, %scope, error = %e, "plugin condition failed");
                self.report_failing_plugin(tenant, rule, &e)?;
                None
            }
        };
        let now = self.clock.now();
        let routing = self.notifications.routing(tenant)?;
        self.transact(tenant, |tx| {
            let mut work = Work::new(tx, tenant, now);
            if let Some(timer) = timer
                && !fire_timer(&mut work, timer)?
            {
                return Ok(());
            }
            if let Some(outcome) = &outcome {
                let customer = evaluate::scope_customer(&mut work, scope)?;
                evaluate::settle(&mut work, rule, scope, customer.as_ref(), outcome)?;
            }
            work.finish(&routing)
        })
    }

    /// A `plugin.failing` system event (which opens a configuration incident), unless an
    /// incident about the plugin is open already.
    fn report_failing_plugin(&self, tenant: &str, rule: &Compiled, error: &str) -> StoreResult<()> {
        let Condition::Plugin { plugin, .. } = &rule.rule.spec.condition else { return Ok(()) };
        if incidents::is_open_for(&self.store, tenant, &incidents::source("plugin", plugin))? {
            return Ok(());
        }
        let properties = serde_json::json!({ "plugin": plugin, "rule_id": rule.rule.id, "error": error });
        let event = system::event(system::PLUGIN_FAILING, None, properties, None, self.clock.now());
        self.store.emit(tenant, event)
    }

    /// What a plugin condition says about one alert now; `None` when its plugin is missing or
    /// disabled.
    pub(super) async fn plugin_outcome(
        &self,
        tenant: &str,
        rule: &Compiled,
        scope: &str,
    ) -> Result<Option<Outcome>, String> {
        let Condition::Plugin { plugin: name, config, metric, .. } = &rule.rule.spec.condition else {
            return Ok(None);
        };
        let Some(tenant_record) = self.tenants.get(tenant).map_err(|e| e.to_string())? else { return Ok(None) };
        let plugin = self.plugins.get(tenant, name).map_err(|e| e.to_string())?;
        let Some(plugin) = plugin.filter(|p| p.enabled) else { return Ok(None) };
        let now = self.clock.now();
        let (customer, value, window, state) = self
            .store
            .transact(|tx| {
                let mut work = Work::new(tx, tenant, now);
                let customer = evaluate::scope_customer(&mut work, scope)?;
                let (value, window) = match metric {
                    Some(metric) => plugin_value(&mut work, rule, scope, metric.aggregate)?,
                    None => (None, None),
                };
                let state = work.alert(&rule.rule.id, scope)?.map_or(AlertState::Evaluating, |r| r.state);
                Ok((customer, value, window, state))
            })
            .map_err(|e| e.to_string())?;
        let input = Evaluation {
            rule: rule.rule.to_ref(),
            scope_key: Some(scope.to_string()),
            customer: customer.as_ref().map(|c| c.to_ref()),
            window,
            value,
            event: None,
            state,
            config: config.clone(),
        };
        let report = self.plugins.evaluate(&tenant_record, &plugin, &input).await.map_err(|e| e.to_string())?;
        let verdict = report.result.map_err(|e| format!("plugin `{name}`: {e}"))?;
        Ok(Some(Outcome {
            firing: verdict.fire,
            value: verdict.value.or(value.map(|v| v.current)),
            window,
            message: verdict.message,
            severity: verdict.severity,
            labels: verdict.labels,
            ..Outcome::default()
        }))
    }
}

/// The value a plugin condition is given: this window's aggregate and the previous window's.
fn plugin_value(
    work: &mut Work,
    rule: &Compiled,
    scope: &str,
    aggregate: crate::series::aggregate::Aggregate,
) -> TxResult<(Option<ValuePair>, Option<crate::context::Window>)> {
    let current = rule.span.current(work.now);
    let previous = rule.span.previous(&current);
    let now_value = work.window(&rule.rule.id, scope, &current)?.value(aggregate);
    let before = work.window(&rule.rule.id, scope, &previous)?.value(aggregate);
    let window = rule.has_moving_windows().then_some(current.window);
    Ok((Some(ValuePair { current: now_value.unwrap_or(0.0), previous: before }), window))
}

/// Takes the timer being run, so the alert's next timer is written even when it falls at the
/// same time; false when it was run already (its work is not done twice).
fn fire_timer(work: &mut Work, timer: &Timer) -> TxResult<bool> {
    if !work.tx().take_timer(timer)? {
        return Ok(false);
    }
    work.timer_fired(&timer.rule, &timer.scope, timer.due)?;
    Ok(true)
}
