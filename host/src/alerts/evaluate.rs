//! Evaluating rules inside a transaction: an event updates the aggregates it counts in and
//! re-evaluates the alerts it can change; an alert's condition gives an outcome; the outcome
//! moves the alert and queues its notifications.

use jiff::Timestamp;
use serde_json::Value;

use super::Compiled;
use super::state::{self, Due, Outcome};
use super::work::Work;
use crate::cohorts::BatchEntry;
use crate::context::{
    AlertState, CohortRef, EventRef, FlappingRef, ForecastRef, IncidentKind, IncidentStatus, Part, RuleRef, Transition,
};
use crate::notifications::incidents::{self, Incident, IncidentSpec, UpdateInput};
use crate::records::notification::{Kind, Notification};
use crate::records::{Customer, Event};
use crate::rules::CohortChange;
use crate::rules::condition::{Before, Direction, Metric};
use crate::rules::{ALL, Condition, all_pass, number};
use crate::series::forecast::History;
use crate::series::window::{Period, Span};
use crate::store::TxResult;

/// Applies one accepted event to one rule it may concern.
pub fn on_event(work: &mut Work, rule: &Compiled, event: &Event, customer: &Customer) -> TxResult<()> {
    let spec = &rule.rule.spec;
    let Some(scope) = spec.scope.key_for(customer) else { return Ok(()) };
    let id = rule.rule.id.as_str();
    match &spec.condition {
        Condition::Threshold { metric, .. }
        | Condition::PercentChange { metric, .. }
        | Condition::Steps { metric, .. }
        | Condition::Balance { metric, .. }
        | Condition::Anomaly { metric, .. }
        | Condition::Forecast { metric, .. } => {
            let Some(sample) = metric.sample(event, customer) else { return Ok(()) };
            add_sample(work, rule, &scope, event, sample)?;
            evaluate_for(work, rule, &scope, in_context(&scope, customer))
        }
        Condition::Plugin { metric, .. } => {
            if let Some(metric) = metric {
                let Some(sample) = metric.sample(event, customer) else { return Ok(()) };
                add_sample(work, rule, &scope, event, sample)?;
            }
            work.soon(id, &scope);
            Ok(())
        }
        Condition::EventMatch { matches } => {
            if matches.iter().any(|pattern| pattern.matches(event, customer)) {
                let due = Due::new(Kind::Match, Default::default());
                let outcome = Outcome::default();
                let notification = notification(work, rule, &scope, Some(customer), &due, &outcome, Some(event));
                work.notify(notification);
            }
            Ok(())
        }
        Condition::Inactivity { event_types, filters, .. } => {
            let counts = event_types.is_empty() || event_types.contains(&event.event_type);
            if !counts || !all_pass(filters, Some(event), customer) {
                return Ok(());
            }
            let mut record = work.take_alert(id, &scope)?;
            record.last_seen = record.last_seen.max(Some(event.timestamp));
            work.put_alert(id, &scope, record)?;
            evaluate_for(work, rule, &scope, in_context(&scope, customer))
        }
        Condition::Offset { .. } | Condition::Cohort { .. } => Ok(()),
    }
}

/// Matches a system event against an `event_match` rule that names its type.
pub fn on_system_event(work: &mut Work, rule: &Compiled, event: &Event, customer: Option<&Customer>) {
    let Condition::EventMatch { matches } = &rule.rule.spec.condition else { return };
    let scope = match customer {
        Some(customer) => rule.rule.spec.scope.key_for(customer),
        None => matches!(rule.rule.spec.scope, crate::rules::Scope::All).then(|| ALL.to_string()),
    };
    let Some(scope) = scope else { return };
    let blank = Customer::blank("", work.now);
    if matches.iter().any(|pattern| pattern.matches(event, customer.unwrap_or(&blank))) {
        let due = Due::new(Kind::Match, Default::default());
        let notification = notification(work, rule, &scope, customer, &due, &Outcome::default(), Some(event));
        work.notify(notification);
    }
}

fn add_sample(work: &mut Work, rule: &Compiled, scope: &str, event: &Event, sample: f64) -> TxResult<()> {
    let (bucket, oldest) = (rule.span.bucket(event.timestamp), rule.oldest_kept(work.now));
    work.add_sample(&rule.rule.id, scope, bucket, sample, oldest)
}

/// Evaluates a built-in condition for one alert and settles the outcome.
pub fn evaluate(work: &mut Work, rule: &Compiled, scope: &str) -> TxResult<()> {
    let customer = scope_customer(work, scope)?;
    evaluate_for(work, rule, scope, customer.as_ref())
}

/// `evaluate` with the scope's customer at hand.
fn evaluate_for(work: &mut Work, rule: &Compiled, scope: &str, customer: Option<&Customer>) -> TxResult<()> {
    let outcome = outcome(work, rule, scope, customer)?;
    settle(work, rule, scope, customer, &outcome)
}

/// The customer an alert of `scope` is about: none for the whole customer base.
fn in_context<'c>(scope: &str, customer: &'c Customer) -> Option<&'c Customer> {
    (scope != ALL).then_some(customer)
}

pub fn scope_customer(work: &mut Work, scope: &str) -> TxResult<Option<Customer>> {
    if scope == ALL { Ok(None) } else { work.customer(scope) }
}

/// What a built-in condition finds for one alert now. (Event-match rules are judged per event,
/// plugin rules by their plugin.)
pub fn outcome(work: &mut Work, rule: &Compiled, scope: &str, customer: Option<&Customer>) -> TxResult<Outcome> {
    let now = work.now;
    let (id, span) = (rule.rule.id.as_str(), &rule.span);
    let value_of = |work: &mut Work, period: &Period, metric: &Metric| {
        work.window(id, scope, period).map(|agg| agg.value(metric.aggregate))
    };
    Ok(match &rule.rule.spec.condition {
        Condition::Threshold { metric, operator, value, .. } => {
            let period = span.current(now);
            let current = value_of(work, &period, metric)?;
            let firing = current.and_then(|v| v.partial_cmp(value)).is_some_and(|order| operator.holds(order));
            Outcome {
                firing,
                value: current,
                threshold: Some(*value),
                window: Some(period.window),
                ..Outcome::default()
            }
        }
        Condition::PercentChange { metric, direction, percent, .. } => {
            let period = span.completed(now);
            let current = value_of(work, &period, metric)?;
            let before = value_of(work, &span.previous(&period), metric)?;
            let change = match (current, before) {
                (Some(current), Some(before)) if before != 0.0 => Some((current - before) / before.abs() * 100.0),
                _ => None,
            };
            let (firing, threshold) = match direction {
                Direction::Down => (change.is_some_and(|c| c <= -percent), -percent),
                Direction::Up => (change.is_some_and(|c| c >= *percent), *percent),
            };
            Outcome {
                firing,
                value: change,
                threshold: Some(threshold),
                window: Some(period.window),
                ..Outcome::default()
            }
        }
        Condition::Steps { metric, target, steps, .. } => {
            let period = span.current(now);
            let current = value_of(work, &period, metric)?.unwrap_or(0.0);
            let reached: Vec<f64> = steps.iter().copied().filter(|step| current >= target * step / 100.0).collect();
            Outcome {
                firing: !reached.is_empty(),
                value: Some(current),
                threshold: Some(*target),
                window: Some(period.window),
                steps: reached,
                ..Outcome::default()
            }
        }
        Condition::Balance { metric, balance_field, .. } => {
            let period = span.current(now);
            let usage = value_of(work, &period, metric)?.unwrap_or(0.0);
            let balance = customer.and_then(|c| c.fields.get(balance_field)).and_then(number);
            Outcome {
                firing: balance.is_some_and(|b| usage > b),
                value: Some(usage),
                threshold: balance,
                window: (!matches!(span, Span::Ever)).then_some(period.window),
                ..Outcome::default()
            }
        }
        Condition::Anomaly { sensitivity, direction, min_history, .. } => {
            let plan = rule.rule.spec.condition.anomaly_plan().expect("an anomaly condition");
            // The span is one bucket wide: the window before the current one is the newest
            // completed bucket.
            let judged = span.previous(&span.current(now));
            let window = judged.window;
            match plan.judge(work.series(id, scope)?, judged.first, *sensitivity) {
                Some(found) => {
                    let band = found.expected.filter(|_| found.history >= *min_history);
                    Outcome {
                        firing: band.is_some_and(|band| direction.breached(found.value, &band)),
                        value: Some(found.value),
                        window: Some(window),
                        anomaly: band,
                        ..Outcome::default()
                    }
                }
                None => Outcome { window: Some(window), ..Outcome::default() },
            }
        }
        Condition::Forecast { metric, window, method, lookback, min_history, value, before } => {
            let tz = &rule.rule.spec.timezone;
            let period = Span::new(Some(window), tz).current(now);
            let by = match before {
                Before::PeriodEnd => Some(period.window.end),
                Before::Ahead(ahead) => now.checked_add(ahead.0).ok(),
                Before::Field(field) => customer.and_then(|c| c.fields.get(field)).and_then(|v| moment_of(v, tz)),
            };
            let series = work.series(id, scope)?;
            let buckets = series.values(metric.aggregate);
            let history = History {
                buckets: &buckets,
                period_start: period.first,
                first_seen: series.first_bucket().unwrap_or(now.as_second()),
            };
            let projection = by.and_then(|by| {
                let seconds = |d: &crate::duration::Duration| d.0.as_secs();
                history.project(*method, now, seconds(lookback), seconds(min_history), *value, by).map(|p| (p, by))
            });
            let firing = projection.is_some_and(|(p, by)| p.crossing_at.is_some_and(|at| at <= by));
            Outcome {
                firing,
                value: projection.map(|(p, _)| p.current),
                threshold: Some(*value),
                window: Some(period.window),
                forecast: projection.map(|(p, by)| ForecastRef {
                    method: *method,
                    projected: p.projected,
                    crossing_at: p.crossing_at,
                    by,
                }),
                ..Outcome::default()
            }
        }
        Condition::Inactivity { duration, .. } => {
            let last_seen = work.alert(id, scope)?.and_then(|r| r.last_seen);
            let deadline = last_seen.map(|seen| seen + duration.0);
            let firing = deadline.is_some_and(|d| now >= d);
            Outcome { firing, due: deadline.filter(|_| !firing), ..Outcome::default() }
        }
        Condition::Offset { field, offset } => {
            let moment = customer
                .and_then(|c| c.fields.get(field))
                .and_then(|v| moment_of(v, &rule.rule.spec.timezone))
                .map(|at| at + offset.0)
                // Only moments after the rule was saved: a new rule does not fire for the past.
                .filter(|m| *m >= rule.rule.updated_at);
            Outcome { moment: moment.filter(|m| *m <= now), due: moment.filter(|m| *m > now), ..Outcome::default() }
        }
        Condition::EventMatch { .. } | Condition::Plugin { .. } | Condition::Cohort { .. } => Outcome::default(),
    })
}

/// Moves the alert by `outcome` and queues the notifications it calls for.
pub fn settle(
    work: &mut Work,
    rule: &Compiled,
    scope: &str,
    customer: Option<&Customer>,
    outcome: &Outcome,
) -> TxResult<()> {
    let id = rule.rule.id.as_str();
    let mut record = work.take_alert(id, scope)?;
    let (due, transition) = state::apply(&rule.rule.spec, &mut record, outcome, work.now);
    work.put_alert(id, scope, record)?;
    let change = transition.as_ref().map(|t| (t.previous, t.current));
    if let Some(mut transition) = transition {
        transition.scope_key = scope.to_string();
        work.transition(id, transition);
    }
    let mut notifications: Vec<Notification> =
        due.iter().map(|due| notification(work, rule, scope, customer, due, outcome, None)).collect();
    if rule.rule.spec.incident
        && let Some(change) = change
    {
        incident_of_alert(work, rule, scope, customer, change, &mut notifications, outcome)?;
    }
    for notification in notifications {
        work.notify(notification);
    }
    Ok(())
}

/// An incident rule's alert entering `in_alarm` opens an incident (its alarm notification is the
/// incident's first update); returning to `ok` resolves it, with a resolved notice.
fn incident_of_alert(
    work: &mut Work,
    rule: &Compiled,
    scope: &str,
    customer: Option<&Customer>,
    (previous, current): (AlertState, AlertState),
    notifications: &mut Vec<Notification>,
    outcome: &Outcome,
) -> TxResult<()> {
    let source = incidents::source("alert", &format!("{}/{scope}", rule.rule.id));
    let open = incidents::open_for(work.tx(), work.tenant, &source)?;
    let by = format!("rule:{}", rule.rule.id);
    let mut incident = match (open, current) {
        (None, AlertState::InAlarm) => {
            let title = match customer {
                Some(c) => format!("{} for {}", rule.rule.spec.name, c.name.as_deref().unwrap_or(&c.id)),
                None => rule.rule.spec.name.clone(),
            };
            let spec = IncidentSpec {
                kind: IncidentKind::Incident,
                title,
                category: rule.rule.spec.category.clone().unwrap_or_default(),
                severity: Some(outcome.severity.unwrap_or(rule.rule.spec.severity)),
                components: Vec::new(),
                message: Some(format!("Opened by rule {} entering in_alarm.", rule.rule.spec.name)),
                status: None,
                starts_at: None,
                ends_at: None,
                // An incident about one customer names it: never on a public page.
                public: customer.is_some().then_some(false),
            };
            let mut incident = Incident::open(incidents::new_id(work.now), &spec, &by, work.now);
            incident.rule_id = Some(rule.rule.id.clone());
            incident.customer_id = customer.map(|c| c.id.clone());
            incident.source = Some(source);
            incident
        }
        (Some(mut incident), AlertState::Ok) if previous == AlertState::InAlarm => {
            let input = UpdateInput {
                status: Some(IncidentStatus::Resolved),
                message: Some(format!("Resolved: rule {} returned to ok.", rule.rule.spec.name)),
            };
            incident.update(&input, &by, work.now);
            if !notifications.iter().any(|n| n.kind == Kind::Resolved) {
                let resolved = Due::new(Kind::Resolved, Transition { previous, current });
                notifications.push(notification(work, rule, scope, customer, &resolved, outcome, None));
            }
            incident
        }
        _ => return Ok(()),
    };
    // The alarm or resolved notice tells the incident's update.
    if let Some(n) = notifications.iter_mut().find(|n| matches!(n.kind, Kind::Alarm | Kind::Resolved)) {
        if let Some(latest) = incident.timeline.last_mut() {
            latest.notification_id = Some(n.id.clone());
        }
        n.incident_id = Some(incident.id.clone());
        n.context.incident = Some(incident.to_ref());
    }
    incidents::put(work.tx(), work.tenant, &incident)
}

fn notification(
    work: &Work,
    rule: &Compiled,
    scope: &str,
    customer: Option<&Customer>,
    due: &Due,
    outcome: &Outcome,
    event: Option<&Event>,
) -> Notification {
    let spec = &rule.rule.spec;
    let severity = outcome.severity.unwrap_or(spec.severity);
    let mut n = Notification::new(work.tenant, due.kind, RuleRef { severity, ..rule.rule.to_ref() }, work.now);
    n.rule_id = Some(rule.rule.id.clone());
    n.scope_key = scope.to_string();
    n.customer_id = customer.map(|c| c.id.clone());
    n.step = due.step;
    n.message = outcome.message.clone();
    n.channels = spec.channels.clone();
    n.labels = outcome.labels.clone();
    let context = &mut n.context;
    context.customer = customer.map(Customer::to_ref);
    context.state = due.state;
    context.flapping = due.changes.zip(spec.flapping).map(|(changes, f)| FlappingRef { changes, within: f.within });
    context.value = outcome.value;
    context.threshold = outcome.threshold;
    context.window = outcome.window;
    context.anomaly = outcome.anomaly;
    context.forecast = outcome.forecast;
    context.event = event.map(|e| EventRef {
        id: e.id.clone(),
        customer_id: e.customer_id.clone(),
        event_type: e.event_type.clone(),
        timestamp: e.timestamp,
        properties: e.properties.clone(),
    });
    n
}

/// Customers listed per notification of a cohort batch; a larger batch is split in parts.
pub const BATCH_PART: usize = 1000;

/// The notifications of a cohort rule's batch: who entered and who left, oldest first, in
/// parts of at most `BATCH_PART` customers.
pub fn cohort_batch(work: &mut Work, rule: &Compiled, cohort: &CohortRef, mut entries: Vec<BatchEntry>) {
    entries.sort_by_key(|e| (e.change != CohortChange::Entered, e.member.at));
    let parts = entries.len().div_ceil(BATCH_PART);
    let due = Due::new(Kind::Cohort, Default::default());
    for (i, part) in entries.chunks(BATCH_PART).enumerate() {
        let mut n = notification(work, rule, ALL, None, &due, &Outcome::default(), None);
        let context = &mut n.context;
        for entry in part {
            match entry.change {
                CohortChange::Entered => context.entered.push(entry.member.clone()),
                CohortChange::Exited => context.exited.push(entry.member.clone()),
            }
        }
        context.entered_count = context.entered.len();
        context.exited_count = context.exited.len();
        context.cohort = Some(cohort.clone());
        context.part = (parts > 1).then_some(Part { number: i + 1, of: parts });
        work.notify(n);
    }
}

/// A customer field holding a time: an RFC 3339 timestamp, or a date (midnight in `tz`).
fn moment_of(value: &Value, tz: &str) -> Option<Timestamp> {
    let text = value.as_str()?;
    if let Ok(at) = text.parse::<Timestamp>() {
        return Some(at);
    }
    let date: jiff::civil::Date = text.parse().ok()?;
    date.in_tz(tz).ok().map(|z| z.timestamp())
}
