//! What a rule watches: its condition, the scope it applies to, and the pieces they are made of
//! (metrics, windows, filters, durations), each with its save-time checks.

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration::Duration;
use crate::error::{Check, invalid};
use crate::series::aggregate::Aggregate;
use crate::series::anomaly::{Bucket, Deviation, MAX_HISTORY_BUCKETS, Plan, Seasonality};
use crate::series::forecast::Method;
use crate::series::window::WindowSpec;

/// The built-in conditions of the design, and `plugin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// An aggregate over a window compared with a constant.
    Threshold { metric: Metric, window: WindowSpec, operator: Op, value: f64 },
    /// This window against the previous one, up or down by at least `percent`.
    PercentChange { metric: Metric, window: WindowSpec, direction: Direction, percent: f64 },
    /// Each completed bucket of the metric against what its history leads one to expect.
    Anomaly {
        metric: Metric,
        bucket: Bucket,
        #[serde(default)]
        seasonality: Seasonality,
        /// How many earlier buckets (or seasons) make the expectation.
        #[serde(default = "default_history")]
        history: u32,
        /// How many robust deviations from the expectation count as anomalous.
        #[serde(default = "default_sensitivity")]
        sensitivity: f64,
        #[serde(default)]
        direction: Deviation,
        /// How many earlier buckets (or seasons) must have been seen before it may fire.
        #[serde(default = "default_min_history")]
        min_history: u32,
    },
    /// The metric summed over its calendar period, projected forward at its run rate: fires
    /// while the projection reaches `value` before `before`, resolves when it no longer does.
    Forecast {
        metric: Metric,
        /// The period the sum runs over: the billing month, the quarter.
        window: WindowSpec,
        #[serde(default)]
        method: Method,
        /// How far back the rate is read.
        #[serde(default = "default_lookback")]
        lookback: Duration,
        /// How much history it needs before it may fire.
        #[serde(default = "default_forecast_history")]
        min_history: Duration,
        value: f64,
        #[serde(default)]
        before: Before,
    },
    /// Percentages of a target; each step fires once per window.
    Steps { metric: Metric, window: WindowSpec, target: f64, steps: Vec<f64> },
    /// Usage against a customer's prepaid credit, kept in a customer field.
    Balance {
        metric: Metric,
        #[serde(default)]
        window: Option<WindowSpec>,
        balance_field: String,
    },
    /// Any of the patterns matches an event (OR across patterns; AND within one).
    EventMatch { matches: Vec<EventPattern> },
    /// No matching event for `duration`.
    Inactivity {
        #[serde(default)]
        event_types: Vec<String>,
        #[serde(default)]
        filters: Vec<Filter>,
        duration: Duration,
    },
    /// A duration before (negative) or after a timestamp in a customer field.
    Offset { field: String, offset: Duration },
    /// Customers entering or leaving a cohort, sent in a batch every `batch_interval`.
    Cohort {
        cohort: String,
        #[serde(default = "both_changes")]
        on: Vec<CohortChange>,
        #[serde(default = "default_batch_interval")]
        batch_interval: Duration,
    },
    /// A tenant's condition plugin, with its config; `metric` and `window` give it a value.
    Plugin {
        plugin: String,
        #[serde(default)]
        config: Value,
        #[serde(default)]
        metric: Option<Metric>,
        #[serde(default)]
        window: Option<WindowSpec>,
    },
}

fn default_lookback() -> Duration {
    Duration(SignedDuration::from_hours(7 * 24))
}

fn default_forecast_history() -> Duration {
    Duration(SignedDuration::from_hours(24))
}

/// The moment a forecast must not reach its value before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BeforeWritten", into = "BeforeWritten")]
pub enum Before {
    /// The end of the current period (`"period_end"`).
    #[default]
    PeriodEnd,
    /// A time in a customer field (`{"field": "contract_end"}`).
    Field(String),
    /// A duration from now (`"30d"`).
    Ahead(Duration),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum BeforeWritten {
    Text(String),
    Field { field: String },
}

impl TryFrom<BeforeWritten> for Before {
    type Error = String;

    fn try_from(written: BeforeWritten) -> Result<Self, String> {
        match written {
            BeforeWritten::Field { field } => Ok(Before::Field(field)),
            BeforeWritten::Text(text) if text == "period_end" => Ok(Before::PeriodEnd),
            BeforeWritten::Text(text) => text.parse().map(Before::Ahead).map_err(|_| {
                format!("`{text}` is not `period_end`, a duration like 30d, or {{\"field\": \"<customer field>\"}}")
            }),
        }
    }
}

impl From<Before> for BeforeWritten {
    fn from(before: Before) -> Self {
        match before {
            Before::PeriodEnd => BeforeWritten::Text("period_end".into()),
            Before::Field(field) => BeforeWritten::Field { field },
            Before::Ahead(duration) => BeforeWritten::Text(duration.to_string()),
        }
    }
}

fn default_history() -> u32 {
    8
}

fn default_sensitivity() -> f64 {
    3.0
}

/// Each of `types` with the path of its place in the list at `at`.
fn listed<'a>(at: &str, types: &'a [String]) -> Vec<(String, &'a str)> {
    types.iter().enumerate().map(|(i, t)| (format!("{at}[{i}]"), t.as_str())).collect()
}

/// The least `history` there is, so the default always fits.
fn default_min_history() -> u32 {
    3
}

fn both_changes() -> Vec<CohortChange> {
    vec![CohortChange::Entered, CohortChange::Exited]
}

fn default_batch_interval() -> Duration {
    Duration(SignedDuration::from_mins(15))
}

const MIN_BATCH_INTERVAL: SignedDuration = SignedDuration::from_mins(1);
const MAX_BATCH_INTERVAL: SignedDuration = SignedDuration::from_hours(7 * 24);

impl Condition {
    /// Threshold-like conditions keep an alert state per scope key; the others notify on each
    /// match.
    pub fn is_stateful(&self) -> bool {
        !matches!(self, Condition::EventMatch { .. } | Condition::Offset { .. } | Condition::Cohort { .. })
    }

    /// Inactivity and offset: time alone brings their moment, per scope key, so the scheduler
    /// tracks each customer in scope.
    pub fn is_timed_per_key(&self) -> bool {
        matches!(self, Condition::Inactivity { .. } | Condition::Offset { .. })
    }

    /// Its kind, as written in `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::Threshold { .. } => "threshold",
            Condition::PercentChange { .. } => "percent_change",
            Condition::Anomaly { .. } => "anomaly",
            Condition::Forecast { .. } => "forecast",
            Condition::Steps { .. } => "steps",
            Condition::Balance { .. } => "balance",
            Condition::EventMatch { .. } => "event_match",
            Condition::Inactivity { .. } => "inactivity",
            Condition::Offset { .. } => "offset",
            Condition::Cohort { .. } => "cohort",
            Condition::Plugin { .. } => "plugin",
        }
    }

    /// Every event type it names, each with the path of the field naming it.
    pub fn event_types(&self) -> Vec<(String, &str)> {
        match self {
            Condition::Threshold { metric, .. }
            | Condition::PercentChange { metric, .. }
            | Condition::Anomaly { metric, .. }
            | Condition::Forecast { metric, .. }
            | Condition::Steps { metric, .. }
            | Condition::Balance { metric, .. }
            | Condition::Plugin { metric: Some(metric), .. } => {
                listed("condition.metric.event_types", &metric.event_types)
            }
            Condition::EventMatch { matches } => matches
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("condition.matches[{i}].event_type"), m.event_type.as_str()))
                .collect(),
            Condition::Inactivity { event_types, .. } => listed("condition.event_types", event_types),
            Condition::Offset { .. } | Condition::Cohort { .. } | Condition::Plugin { metric: None, .. } => Vec::new(),
        }
    }

    /// How an `anomaly` condition judges its buckets.
    pub fn anomaly_plan(&self) -> Option<Plan> {
        match self {
            Condition::Anomaly { metric, bucket, seasonality, history, .. } => Some(Plan {
                bucket: *bucket,
                seasonality: *seasonality,
                history: *history,
                aggregate: metric.aggregate,
            }),
            _ => None,
        }
    }

    pub fn check(&self) -> Check {
        match self {
            Condition::Threshold { metric, window, operator, .. } => {
                metric.check("condition.metric")?;
                check_window("condition.window", window)?;
                if matches!(operator, Op::In | Op::Exists) {
                    return Err(invalid("condition.operator", "must be one of = != > >= < <="));
                }
                Ok(())
            }
            Condition::PercentChange { metric, window, percent, .. } => {
                metric.check("condition.metric")?;
                check_window("condition.window", window)?;
                positive("condition.percent", *percent)
            }
            Condition::Anomaly { metric, bucket, seasonality, history, sensitivity, min_history, .. } => {
                metric.check("condition.metric")?;
                if !(3..=1000).contains(history) {
                    return Err(invalid("condition.history", "must be 3 to 1000"));
                }
                let plan = self.anomaly_plan().expect("an anomaly condition");
                if *seasonality != Seasonality::None && plan.step() <= bucket.seconds() {
                    return Err(invalid("condition.seasonality", "a season must be longer than a bucket"));
                }
                if plan.history_buckets() > MAX_HISTORY_BUCKETS {
                    let most = MAX_HISTORY_BUCKETS * bucket.seconds() / plan.step();
                    return Err(invalid(
                        "condition.history",
                        format!(
                            "keeps {} buckets, more than {MAX_HISTORY_BUCKETS}: at most {most} with these buckets and seasons",
                            plan.history_buckets()
                        ),
                    ));
                }
                if !(sensitivity.is_finite() && (0.5..=20.0).contains(sensitivity)) {
                    return Err(invalid("condition.sensitivity", "must be from 0.5 to 20"));
                }
                if !(1..=*history).contains(min_history) {
                    return Err(invalid("condition.min_history", "must be 1 to `history`"));
                }
                Ok(())
            }
            Condition::Forecast { metric, window, lookback, min_history, value, before, .. } => {
                metric.check("condition.metric")?;
                if !matches!(metric.aggregate, Aggregate::Sum | Aggregate::Count) {
                    return Err(invalid("condition.metric.aggregate", "a forecast sums: `sum` or `count`"));
                }
                if !matches!(window, WindowSpec::Calendar(_)) {
                    return Err(invalid(
                        "condition.window",
                        "a forecast's window is a calendar period (`{\"calendar\": \"month\"}`): its sum starts again each period",
                    ));
                }
                let hour = SignedDuration::from_hours(1);
                if lookback.0 < hour || lookback.0 > SignedDuration::from_hours(90 * 24) {
                    return Err(invalid("condition.lookback", "must be 1h to 90d"));
                }
                if min_history.0 < SignedDuration::ZERO || min_history.0 > lookback.0 {
                    return Err(invalid("condition.min_history", "must be 0s to `lookback`"));
                }
                positive("condition.value", *value)?;
                match before {
                    Before::PeriodEnd => Ok(()),
                    Before::Field(field) => name("condition.before.field", field),
                    Before::Ahead(ahead) if ahead.0 >= hour && ahead.0 <= SignedDuration::from_hours(400 * 24) => {
                        Ok(())
                    }
                    Before::Ahead(_) => Err(invalid("condition.before", "a duration ahead must be 1h to 400d")),
                }
            }
            Condition::Steps { metric, window, target, steps } => {
                metric.check("condition.metric")?;
                check_window("condition.window", window)?;
                positive("condition.target", *target)?;
                if steps.is_empty() || steps.len() > 20 {
                    return Err(invalid("condition.steps", "must hold 1 to 20 percentages"));
                }
                for (i, step) in steps.iter().enumerate() {
                    if !(*step > 0.0 && *step <= 100.0) {
                        return Err(invalid(format!("condition.steps[{i}]"), "must be above 0 and at most 100"));
                    }
                    if i > 0 && *step <= steps[i - 1] {
                        return Err(invalid(format!("condition.steps[{i}]"), "steps must increase"));
                    }
                }
                Ok(())
            }
            Condition::Balance { metric, window, balance_field } => {
                metric.check("condition.metric")?;
                if let Some(window) = window {
                    check_window("condition.window", window)?;
                }
                name("condition.balance_field", balance_field)
            }
            Condition::EventMatch { matches } => {
                if matches.is_empty() {
                    return Err(invalid("condition.matches", "must hold at least one event pattern"));
                }
                for (i, pattern) in matches.iter().enumerate() {
                    let at = format!("condition.matches[{i}]");
                    name(&format!("{at}.event_type"), &pattern.event_type)?;
                    check_filters(&format!("{at}.filters"), &pattern.filters, FieldSource::EventOrCustomer)?;
                }
                Ok(())
            }
            Condition::Inactivity { event_types, filters, duration } => {
                check_event_types("condition.event_types", event_types, true)?;
                check_filters("condition.filters", filters, FieldSource::EventOrCustomer)?;
                check_positive("condition.duration", *duration)
            }
            Condition::Offset { field, .. } => name("condition.field", field),
            Condition::Cohort { cohort, on, batch_interval } => {
                name("condition.cohort", cohort)?;
                if on.is_empty() || (on.len() == 2 && on[0] == on[1]) || on.len() > 2 {
                    return Err(invalid("condition.on", "must name `entered`, `exited` or both, once each"));
                }
                if !(MIN_BATCH_INTERVAL..=MAX_BATCH_INTERVAL).contains(&batch_interval.0) {
                    return Err(invalid("condition.batch_interval", "must be from 1m to 7d"));
                }
                Ok(())
            }
            Condition::Plugin { plugin, metric, window, .. } => {
                name("condition.plugin", plugin)?;
                if let Some(metric) = metric {
                    metric.check("condition.metric")?;
                }
                if let Some(window) = window {
                    check_window("condition.window", window)?;
                }
                Ok(())
            }
        }
    }
}

/// An aggregate of matching events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub event_types: Vec<String>,
    #[serde(default)]
    pub filters: Vec<Filter>,
    pub aggregate: Aggregate,
    /// The numeric event property aggregated; not used by `count`.
    #[serde(default)]
    pub property: Option<String>,
}

impl Metric {
    fn check(&self, at: &str) -> Check {
        check_event_types(&format!("{at}.event_types"), &self.event_types, false)?;
        check_filters(&format!("{at}.filters"), &self.filters, FieldSource::EventOrCustomer)?;
        match (&self.aggregate, &self.property) {
            (Aggregate::Count, Some(_)) => {
                Err(invalid(format!("{at}.property"), "`count` counts events; leave `property` out"))
            }
            (Aggregate::Count, None) => Ok(()),
            (_, None) => Err(invalid(format!("{at}.property"), "is required: the numeric event property to aggregate")),
            (_, Some(property)) => name(&format!("{at}.property"), property),
        }
    }
}

/// A rolling window is a positive duration.
fn check_window(at: &str, window: &WindowSpec) -> Check {
    match window {
        WindowSpec::Calendar(_) => Ok(()),
        WindowSpec::Rolling(d) => check_positive(&format!("{at}.rolling"), *d),
    }
}

fn check_positive(at: &str, d: Duration) -> Check {
    if d.0.is_positive() { Ok(()) } else { Err(invalid(at, "must be a positive duration")) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// One event type with the filters its events must all pass.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventPattern {
    pub event_type: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

/// Whether a customer entered or left a cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CohortChange {
    Entered,
    Exited,
}

/// A test on an event property (`event.<name>`, or a path into it: `event.changes.tier.new`) or
/// a customer field (`customer.<name>`, incl. `customer.first_seen`, `customer.last_seen` and
/// `customer.activity.<event type>.count|first_seen|last_seen`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub field: String,
    pub op: Op,
    /// Unused by `exists`; a list for `in`.
    #[serde(default)]
    pub value: Value,
}

/// A comparison, for filters and thresholds (`in` and `exists` only in filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "in")]
    In,
    #[serde(rename = "exists")]
    Exists,
}

/// Where a filter's field may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldSource {
    EventOrCustomer,
    Customer,
    Event,
}

pub fn check_filters(at: &str, filters: &[Filter], source: FieldSource) -> Check {
    for (i, filter) in filters.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let (namespace, field) = filter.field.split_once('.').unwrap_or(("", ""));
        let namespace_ok = match source {
            FieldSource::EventOrCustomer => matches!(namespace, "event" | "customer"),
            FieldSource::Customer => namespace == "customer",
            FieldSource::Event => namespace == "event",
        };
        if !namespace_ok || field.is_empty() {
            let expected = match source {
                FieldSource::EventOrCustomer => "`event.<property>` or `customer.<field>`",
                FieldSource::Customer => "`customer.<field>`",
                FieldSource::Event => "`event.<property>`",
            };
            return Err(invalid(format!("{at}.field"), format!("must read {expected}")));
        }
        check_comparison(&at, filter)?;
    }
    Ok(())
}

/// Whether a filter's value suits its operator (`at` names the filter).
pub fn check_comparison(at: &str, filter: &Filter) -> Check {
    let value = &filter.value;
    match filter.op {
        Op::Exists if !value.is_null() => Err(invalid(format!("{at}.value"), "`exists` takes no value")),
        Op::In if value.as_array().is_none_or(|v| v.is_empty()) => {
            Err(invalid(format!("{at}.value"), "`in` takes a non-empty list"))
        }
        Op::Above | Op::AtLeast | Op::Below | Op::AtMost if !(value.is_number() || value.is_string()) => {
            Err(invalid(format!("{at}.value"), "comparisons take a number or a string"))
        }
        Op::Equal | Op::NotEqual if value.is_null() || value.is_object() || value.is_array() => {
            Err(invalid(format!("{at}.value"), "takes a string, number or boolean"))
        }
        _ => Ok(()),
    }
}

/// Which customers a rule applies to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scope {
    /// The customer base as a whole: one alert state.
    All,
    /// Every customer on its own: an alert state per customer.
    Each,
    /// One customer.
    Customer { customer_id: String },
    /// The customers whose fields pass the filters, each on its own.
    Group { filters: Vec<Filter> },
}

impl Scope {
    pub fn check(&self) -> Check {
        match self {
            Scope::All | Scope::Each => Ok(()),
            Scope::Customer { customer_id } => name("scope.customer_id", customer_id),
            Scope::Group { filters } if filters.is_empty() => {
                Err(invalid("scope.filters", "a group needs at least one filter"))
            }
            Scope::Group { filters } => check_filters("scope.filters", filters, FieldSource::Customer),
        }
    }
}

/// How often a rule in alarm notifies: once per alarm, or again every `duration` while it lasts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Frequency {
    #[default]
    Once,
    Every(Duration),
}

/// A name: 1 to 128 bytes.
pub fn name(at: &str, value: &str) -> Check {
    if value.is_empty() || value.len() > 128 {
        return Err(invalid(at, "must be 1 to 128 bytes"));
    }
    Ok(())
}

fn positive(at: &str, value: f64) -> Check {
    if value > 0.0 && value.is_finite() { Ok(()) } else { Err(invalid(at, "must be above 0")) }
}

/// Event types that usage is counted from: system events are not usage.
pub fn check_event_types(at: &str, types: &[String], may_be_empty: bool) -> Check {
    if types.is_empty() && !may_be_empty {
        return Err(invalid(at, "must name at least one event type"));
    }
    for (i, t) in types.iter().enumerate() {
        check_usage_type(&format!("{at}[{i}]"), t)?;
    }
    Ok(())
}

/// An event type that counts as usage: a name, and not one of Klaxon's system events (only
/// `event_match` rules see those).
pub fn check_usage_type(at: &str, event_type: &str) -> Check {
    name(at, event_type)?;
    if crate::records::system::is_system_type(event_type) {
        return Err(invalid(at, format!("`{event_type}` is a system event: only `event_match` rules see it")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(field: &str, op: Op, value: Value) -> Filter {
        Filter { field: field.into(), op, value }
    }

    #[test]
    fn filters_are_checked_by_operator_and_source() {
        use serde_json::json;
        let ok = [
            filter("customer.seats", Op::Above, json!(99)),
            filter("customer.tier", Op::Equal, json!("Enterprise")),
            filter("event.license_type", Op::In, json!(["paid", "community"])),
            filter("event.trial", Op::Exists, Value::Null),
        ];
        assert!(check_filters("f", &ok, FieldSource::EventOrCustomer).is_ok());
        let at = |filters: &[Filter], source| check_filters("f", filters, source).unwrap_err().field;
        assert_eq!(at(&[filter("seats", Op::Above, json!(1))], FieldSource::EventOrCustomer), "f[0].field");
        assert_eq!(at(&[filter("event.x", Op::Equal, json!(1))], FieldSource::Customer), "f[0].field");
        assert_eq!(at(&[filter("event.x", Op::In, json!("paid"))], FieldSource::EventOrCustomer), "f[0].value");
        assert_eq!(at(&[filter("event.x", Op::Exists, json!(true))], FieldSource::EventOrCustomer), "f[0].value");
        assert_eq!(at(&[filter("event.x", Op::Above, json!([1]))], FieldSource::EventOrCustomer), "f[0].value");
    }
}
