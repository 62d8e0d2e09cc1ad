//! What a tenant may use: events ingested per second (with a burst a batch may take at once),
//! events and customers kept, rules and channels, and plugin calls per second. The configuration gives every tenant's (`[tenant_limits]`); the
//! platform admin may set a tenant's own (`PATCH /v1/tenants/{id}`, `limits`).

use serde::{Deserialize, Serialize};

use crate::error::{Invalid, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageLimits {
    pub events_per_second: f64,
    pub events_burst: u64,
    pub max_events: u64,
    pub max_customers: u64,
    pub max_rules: u64,
    pub max_channels: u64,
    /// Calls of the tenant's plugins (conditions, templates, channels, invocations), with a
    /// second's worth at once.
    pub plugin_calls_per_second: f64,
}

/// A tenant's own limits: each unset follows the configuration's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_customers: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rules: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_channels: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_calls_per_second: Option<f64>,
}

impl UsageLimits {
    /// Refuses a limit that would let nothing through, naming it under `at`.
    pub fn check(&self, at: &str) -> Result<(), Invalid> {
        for (name, rate) in
            [("events_per_second", self.events_per_second), ("plugin_calls_per_second", self.plugin_calls_per_second)]
        {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(invalid(format!("{at}.{name}"), "must be a positive number"));
            }
        }
        for (name, value) in [
            ("events_burst", self.events_burst),
            ("max_events", self.max_events),
            ("max_customers", self.max_customers),
            ("max_rules", self.max_rules),
            ("max_channels", self.max_channels),
        ] {
            if value == 0 {
                return Err(invalid(format!("{at}.{name}"), "must be at least 1"));
            }
        }
        Ok(())
    }
}

impl UsageOverrides {
    pub fn is_empty(&self) -> bool {
        *self == UsageOverrides::default()
    }

    /// These limits where set, `defaults` elsewhere.
    pub fn over(&self, defaults: UsageLimits) -> UsageLimits {
        UsageLimits {
            events_per_second: self.events_per_second.unwrap_or(defaults.events_per_second),
            events_burst: self.events_burst.unwrap_or(defaults.events_burst),
            max_events: self.max_events.unwrap_or(defaults.max_events),
            max_customers: self.max_customers.unwrap_or(defaults.max_customers),
            max_rules: self.max_rules.unwrap_or(defaults.max_rules),
            max_channels: self.max_channels.unwrap_or(defaults.max_channels),
            plugin_calls_per_second: self.plugin_calls_per_second.unwrap_or(defaults.plugin_calls_per_second),
        }
    }
}
