//! Rules: a condition, the scope it applies to, and how its notifications are paced. Checked
//! in full when saved, with errors that name the field.

pub mod condition;
mod matching;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::context::{RuleRef, Severity};
use crate::duration::Duration;
use crate::error::{Check, invalid};
use crate::ids::new_id;
use crate::store::{Store, StoreResult};
pub use condition::{CohortChange, Condition, Frequency, Scope};
pub use matching::{ALL, all_pass, number};

const MAX_NAME_BYTES: usize = 200;
const MAX_CHANNELS: usize = 20;

/// A rule as a client writes it (`POST` and `PUT` take the whole rule).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub condition: Condition,
    pub scope: Scope,
    /// Channel ids the notifications go to.
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub frequency: Frequency,
    /// At most this many notifications per window (per scope key); unset is unlimited.
    #[serde(default)]
    pub max_per_window: Option<u32>,
    /// Notify when a stateful rule returns from `in_alarm` to `ok`.
    #[serde(default)]
    pub notify_on_resolve: bool,
    /// How long a stateful rule's condition must hold before its alert leaves `pending` for
    /// `in_alarm` (Prometheus's `for`); unset goes to `in_alarm` at once.
    #[serde(default, rename = "for")]
    pub pending_for: Option<Duration>,
    /// How long an alert stays in alarm after its condition stops holding (no resolve while it
    /// holds again meanwhile).
    #[serde(default)]
    pub keep_firing_for: Option<Duration>,
    /// Marks an alert that changes state too often as flapping, holding back its alarms and
    /// resolved notices meanwhile.
    #[serde(default)]
    pub flapping: Option<Flapping>,
    /// Open an incident (of the rule's category) when an alert enters `in_alarm`, and resolve
    /// it, with a notice, when the alert returns to `ok`.
    #[serde(default)]
    pub incident: bool,
    /// The IANA timezone calendar windows are cut in.
    #[serde(default = "utc")]
    pub timezone: String,
}

/// An alert that changes state `changes` times within `within` is flapping, until it keeps its
/// state for `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flapping {
    pub changes: u32,
    pub within: Duration,
}

const MAX_FLAPPING_CHANGES: u32 = 100;
/// The longest `for`, `keep_firing_for` and `flapping.within`.
const MAX_STATE_DURATION: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);

fn enabled() -> bool {
    true
}

fn utc() -> String {
    "UTC".to_string()
}

/// A stored rule. (The API shows it flat, as `RuleView`; it is kept nested because a flattened
/// spec could not refuse unknown fields.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub spec: RuleSpec,
    /// The key that created it: editors may change only their own rules.
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Rule {
    /// The rule as templates and plugins see it.
    pub fn to_ref(&self) -> RuleRef {
        let spec = &self.spec;
        RuleRef {
            id: self.id.clone(),
            name: spec.name.clone(),
            severity: spec.severity,
            category: spec.category.clone(),
        }
    }
}

/// A rule as the API shows it: its spec's fields beside its own.
#[derive(Debug, Serialize)]
pub struct RuleView<'a> {
    pub id: &'a str,
    #[serde(flatten)]
    pub spec: &'a RuleSpec,
    pub created_by: &'a str,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl<'a> From<&'a Rule> for RuleView<'a> {
    fn from(rule: &'a Rule) -> Self {
        RuleView {
            id: &rule.id,
            spec: &rule.spec,
            created_by: &rule.created_by,
            created_at: rule.created_at,
            updated_at: rule.updated_at,
        }
    }
}

impl RuleSpec {
    /// Every check that needs nothing but the rule itself. (A plugin condition's config is
    /// checked by its plugin, which the caller runs.)
    pub fn check(&self) -> Check {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_BYTES {
            return Err(invalid("name", format!("must be 1 to {MAX_NAME_BYTES} bytes")));
        }
        if let Some(category) = &self.category {
            condition::name("category", category)?;
        }
        self.condition.check()?;
        self.scope.check()?;
        if self.channels.len() > MAX_CHANNELS {
            return Err(invalid("channels", format!("at most {MAX_CHANNELS} channels")));
        }
        for (i, channel) in self.channels.iter().enumerate() {
            condition::name(&format!("channels[{i}]"), channel)?;
        }
        if let Frequency::Every(every) = self.frequency
            && !every.0.is_positive()
        {
            return Err(invalid("frequency.every", "must be a positive duration"));
        }
        if self.max_per_window == Some(0) {
            return Err(invalid("max_per_window", "must be at least 1; leave it out for no cap"));
        }
        if matches!(self.condition, Condition::Balance { .. }) && matches!(self.scope, Scope::All) {
            return Err(invalid(
                "scope",
                "a balance compares each customer's usage with its own credit; use `each`, `customer` or `group`",
            ));
        }
        if matches!(self.condition, Condition::Cohort { .. }) && !matches!(self.scope, Scope::All) {
            return Err(invalid("scope", "a cohort rule reports on its cohort's members; use scope `all`"));
        }
        if matches!(self.condition, Condition::Offset { .. }) && matches!(self.scope, Scope::All) {
            return Err(invalid("scope", "an offset reads each customer's field; use `each`, `customer` or `group`"));
        }
        if matches!(self.condition, Condition::Forecast { before: condition::Before::Field(_), .. })
            && matches!(self.scope, Scope::All)
        {
            return Err(invalid(
                "scope",
                "a forecast before a date in a customer field reads each customer's field; use `each`, `customer` or `group`",
            ));
        }
        if self.notify_on_resolve && !self.condition.is_stateful() {
            return Err(invalid(
                "notify_on_resolve",
                "this condition notifies on each match and never resolves; leave it out",
            ));
        }
        self.check_state_timing()?;
        if self.incident && !self.condition.is_stateful() {
            return Err(invalid(
                "incident",
                "only a stateful condition (one that enters and leaves in_alarm) opens incidents",
            ));
        }
        if self.incident && self.category.is_none() {
            return Err(invalid(
                "incident",
                "an incident rule needs a `category`: its incidents notify that category's subscribers",
            ));
        }
        jiff::tz::TimeZone::get(&self.timezone).map_err(|_| {
            invalid("timezone", format!("`{}` is not an IANA timezone (e.g. Europe/Berlin)", self.timezone))
        })?;
        Ok(())
    }

    /// `for`, `keep_firing_for` and `flapping`: for conditions that enter and leave `in_alarm`.
    fn check_state_timing(&self) -> Check {
        let set = [
            ("for", self.pending_for.is_some()),
            ("keep_firing_for", self.keep_firing_for.is_some()),
            ("flapping", self.flapping.is_some()),
        ];
        for (field, _) in set.iter().filter(|(_, set)| *set) {
            if matches!(self.condition, Condition::Steps { .. }) {
                return Err(invalid(*field, "a steps rule fires each step once; it has no alarm to delay or hold"));
            }
            if !self.condition.is_stateful() {
                return Err(invalid(*field, "this condition notifies on each match and has no alarm state"));
            }
        }
        let within = self.flapping.map(|f| f.within);
        let durations =
            [("for", self.pending_for), ("keep_firing_for", self.keep_firing_for), ("flapping.within", within)];
        for (field, duration) in durations {
            if duration.is_some_and(|d| !d.0.is_positive() || d.0 > MAX_STATE_DURATION) {
                return Err(invalid(field, "must be a duration from 1s to 30d; leave it out for none"));
            }
        }
        if let Some(flapping) = &self.flapping {
            if !(2..=MAX_FLAPPING_CHANGES).contains(&flapping.changes) {
                return Err(invalid("flapping.changes", format!("must be 2 to {MAX_FLAPPING_CHANGES}")));
            }
            if self.incident {
                return Err(invalid(
                    "flapping",
                    "an incident rule's incident follows every change of its alert; leave out flapping or incident",
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct Rules {
    store: Store,
}

impl Rules {
    pub fn new(store: Store) -> Self {
        Rules { store }
    }

    pub fn create(&self, tenant: &str, created_by: &str, spec: RuleSpec, now: Timestamp) -> StoreResult<Rule> {
        let rule =
            Rule { id: new_id("rul"), spec, created_by: created_by.to_string(), created_at: now, updated_at: now };
        self.store.rules.put(tenant, &rule.id, &rule)?;
        Ok(rule)
    }

    pub fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Rule>> {
        self.store.rules.get(tenant, id)
    }

    pub fn list(&self, tenant: &str) -> StoreResult<Vec<Rule>> {
        self.store.rules.list(tenant)
    }

    pub fn replace(&self, tenant: &str, mut rule: Rule, spec: RuleSpec, now: Timestamp) -> StoreResult<Rule> {
        rule.spec = spec;
        rule.updated_at = now;
        self.store.rules.put(tenant, &rule.id, &rule)?;
        Ok(rule)
    }

    pub fn delete(&self, tenant: &str, id: &str) -> StoreResult<()> {
        self.store.rules.delete(tenant, id)?;
        Ok(())
    }
}
