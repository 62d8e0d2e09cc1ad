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
}
