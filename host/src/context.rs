//! The context variables of the design: what a notification is about, as templates and
//! template plugins see it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Ordered: `info` < `warning` < `critical`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    #[default]
    Evaluating,
    Ok,
    /// The condition holds, for less than the rule's `for` so far.
    Pending,
    InAlarm,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleRef {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub category: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerRef {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// Start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRef {
    pub id: String,
    /// Absent for a system event that concerns no customer.
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub timestamp: Timestamp,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub previous: AlertState,
    pub current: AlertState,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationRef {
    pub id: String,
    pub timestamp: Timestamp,
    pub url: String,
}

impl NotificationRef {
    /// Notification `id`, made at `now`; its history is at `url`.
    pub fn new(id: &str, now: Timestamp) -> Self {
        NotificationRef { id: id.to_string(), timestamp: now, url: format!("/v1/notifications/{id}") }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortRef {
    pub id: String,
    pub name: String,
}

/// A customer that entered or left a cohort, and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub fields: Map<String, Value>,
    pub at: Timestamp,
}

/// Which part of a batch split over several notifications this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub number: usize,
    pub of: usize,
}

/// Why a notification was held for a channel and sent later as part of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// Quiet hours: released as one digest when they end.
    QuietHours,
    /// Outside the channel's or subscription's active times: released as one digest when the
    /// next one begins.
    Inactive,
    /// The channel's or subscription's digest.
    Digest,
    /// `group_by`: the group's notifications within `group_wait` sent as one.
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    Incident,
    /// A scheduled maintenance advisory: announced, started and ended, never an alarm.
    Maintenance,
}

/// An incident goes `investigating -> identified -> monitoring -> resolved` (any step may be
/// skipped); a maintenance `scheduled -> in_progress -> resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Scheduled,
    InProgress,
    Resolved,
}

/// The incident an `incident` or `maintenance` notification (or an incident rule's alarm)
/// reports on, as it stood then.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentRef {
    pub id: String,
    pub kind: IncidentKind,
    pub title: String,
    pub status: IncidentStatus,
    /// The status before this update, when it changed.
    #[serde(default)]
    pub previous_status: Option<IncidentStatus>,
    #[serde(default)]
    pub components: Vec<String>,
    /// This update's message.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub starts_at: Option<Timestamp>,
    #[serde(default)]
    pub ends_at: Option<Timestamp>,
    pub url: String,
}

/// One notification a digest or group lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestItem {
    pub id: String,
    pub headline: String,
    pub severity: Severity,
    #[serde(default)]
    pub rule_id: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    pub created_at: Timestamp,
}

/// What a `digest` or `group` notification collected.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestRef {
    pub reason: HoldKind,
    /// When it went out.
    pub until: Timestamp,
    pub count: usize,
    /// The notifications, oldest first (at most 1,000 listed; `count` has them all).
    pub items: Vec<DigestItem>,
}

/// Everything a notification's templates can refer to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    pub tenant: String,
    pub rule: RuleRef,
    #[serde(default)]
    pub customer: Option<CustomerRef>,
    #[serde(default)]
    pub state: Transition,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub window: Option<Window>,
    #[serde(default)]
    pub event: Option<EventRef>,
    pub notification: NotificationRef,
    /// The cohort a `cohort` notification reports on.
    #[serde(default)]
    pub cohort: Option<CohortRef>,
    /// The customers that entered it and those that left it, in this notification.
    #[serde(default)]
    pub entered: Vec<Member>,
    #[serde(default)]
    pub exited: Vec<Member>,
    #[serde(default)]
    pub entered_count: usize,
    #[serde(default)]
    pub exited_count: usize,
    /// Set when a batch was split over several notifications.
    #[serde(default)]
    pub part: Option<Part>,
    /// The incident an incident, maintenance or incident rule's notification is about.
    #[serde(default)]
    pub incident: Option<IncidentRef>,
    /// What a digest or group notification collected (filled when it goes out).
    #[serde(default)]
    pub digest: Option<DigestRef>,
    /// A `flapping` or `stable` notification's count of state changes.
    #[serde(default)]
    pub flapping: Option<FlappingRef>,
    /// An anomaly rule's expectation of the bucket in `window` (whose value is `value`).
    #[serde(default)]
    pub anomaly: Option<Expected>,
    /// A forecast rule's projection (`value` is the sum so far, `threshold` the target).
    #[serde(default)]
    pub forecast: Option<ForecastRef>,
}

/// How a forecast reads the rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForecastMethod {
    /// The mean rate over the lookback.
    #[default]
    Linear,
    /// Holt's double exponential smoothing of the hourly amounts: a level and a trend.
    Holt,
}

/// What a forecast rule projected: the sum expected at `by`, and when it reaches the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastRef {
    pub method: ForecastMethod,
    pub projected: f64,
    pub crossing_at: Option<Timestamp>,
    pub by: Timestamp,
}

/// What an anomaly rule expected of the bucket it judged: the median of its history, and the
/// band outside which a value is anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The state changes a `flapping` notification counted within the rule's window, or a `stable`
/// one counted while the alert was flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlappingRef {
    pub changes: usize,
    pub within: crate::duration::Duration,
}
