//! A notification: what a rule (or an incident, a maintenance, a digest) produced for its
//! channels, with the context its templates see. Made by the stages above, routed by
//! `notifications`, sent by `delivery`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::context::{Context, HoldKind, NotificationRef, RuleRef};

/// A batch a channel is still collecting: its notification and when it goes out.
#[derive(Debug, Serialize, Deserialize)]
pub struct OpenBatch {
    pub notification: String,
    pub until: Timestamp,
}

/// Why a rule notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An alert entered `in_alarm`.
    Alarm,
    /// An alert is still in alarm (frequency `every`).
    Reminder,
    /// An alert returned to `ok` (with `notify_on_resolve`).
    Resolved,
    /// A step of a `steps` rule was reached.
    Step,
    /// An event matched an `event_match` rule.
    Match,
    /// The moment of an `offset` rule came.
    Offset,
    /// A batch of a cohort's entries and exits.
    Cohort,
    /// An incident was opened or updated.
    Incident,
    /// A maintenance was announced, started or ended.
    Maintenance,
    /// Notifications a channel held (quiet hours, a digest), sent as one summary.
    Digest,
    /// Notifications of one group arriving within `group_wait`, sent as one.
    Group,
    /// An alert changed state often enough to count as flapping (its alarms and resolved
    /// notices are held back while it flaps).
    Flapping,
    /// A flapping alert has kept its state for the rule's flapping window.
    Stable,
}

impl Kind {
    /// Made by a rule: its channel's own templates and template plugin apply. Incidents,
    /// maintenances, digests and groups use the built-in payloads.
    pub fn is_rule_kind(self) -> bool {
        !matches!(self, Kind::Incident | Kind::Maintenance | Kind::Digest | Kind::Group)
    }

    /// A change of a stateful alert's state, or a reminder of it: what flapping holds back.
    pub fn is_state_notice(self) -> bool {
        matches!(self, Kind::Alarm | Kind::Reminder | Kind::Resolved)
    }
}

/// One channel's hold of a notification: it goes out in notification `batch` at `until`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Held {
    pub channel: String,
    pub kind: HoldKind,
    pub until: Timestamp,
    pub batch: String,
}

/// What a digest or group notification collects, for which channel, until when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub channel: String,
    pub kind: HoldKind,
    /// The batch's key among the channel's (see `noise::Hold`).
    pub key: String,
    pub until: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    /// The rule that made it; none for incidents, maintenances, digests and groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The incident it reports on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    pub scope_key: String,
    pub customer_id: Option<String>,
    pub kind: Kind,
    /// The step reached, for `step` notifications (a percentage of the target).
    pub step: Option<f64>,
    /// What a plugin condition said, when it said something.
    pub message: Option<String>,
    /// Where it went: its rule's channels and its subscriptions', each once.
    pub channels: Vec<String>,
    /// The subscriptions that routed it to their channels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<String>,
    /// The silence that kept it from every channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<String>,
    /// What a plugin condition labelled it with; silences can match them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The channels that hold it for a digest or a group instead of sending it alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Held>,
    /// For a digest or group notification: what it collects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
    pub created_at: Timestamp,
    /// What templates see.
    pub context: Context,
}

impl Notification {
    /// A fresh notification of `kind` about `rule` (or what stands for one), made at `now`: its
    /// context holds the tenant, the rule and itself; the rest is for the maker to fill.
    pub fn new(tenant: &str, kind: Kind, rule: RuleRef, now: Timestamp) -> Notification {
        let id = new_id(now);
        Notification {
            rule_id: None,
            incident_id: None,
            scope_key: String::new(),
            customer_id: None,
            kind,
            step: None,
            message: None,
            channels: Vec::new(),
            subscriptions: Vec::new(),
            silenced_by: None,
            labels: BTreeMap::new(),
            held: Vec::new(),
            batch: None,
            created_at: now,
            context: Context {
                tenant: tenant.to_string(),
                rule,
                notification: NotificationRef::new(&id, now),
                ..Context::default()
            },
            id,
        }
    }
}

/// A fresh id that sorts by creation: `ntf_` + a clock sequence + randomness, in hex.
fn new_id(now: Timestamp) -> String {
    format!("ntf_{:016x}{:08x}", crate::clock::sequence(now), rand::random::<u32>())
}
