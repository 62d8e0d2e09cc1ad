//! System events: what Klaxon itself reports about a tenant's objects (a customer changed, a
//! channel was disabled, a delivery gave up). They are written to a durable outbox in the same
//! write as the change they report, by whichever stage made it, and ingest takes them from there
//! and matches them against the tenant's `event_match` rules. Tenants cannot send these types,
//! and they are not usage: no metric, activity or cohort counts them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Customer, Event};

/// A system event type: its name, what it reports, and the properties its filters can read.
#[derive(Debug, Serialize)]
pub struct SystemType {
    #[serde(rename = "type")]
    pub name: &'static str,
    pub description: &'static str,
    /// Whether the event's customer is set (so `customer.<field>` filters and scopes apply).
    pub has_customer: bool,
    /// Property name and JSON type.
    pub properties: &'static [(&'static str, &'static str)],
}

const ACTOR: (&str, &str) = ("actor_key_id", "string");
const RULE: &[(&str, &str)] = &[("rule_id", "string"), ("name", "string"), ACTOR];
const CHANNEL: &[(&str, &str)] = &[("channel_id", "string"), ("name", "string"), ("kind", "string"), ACTOR];
const PLUGIN: &[(&str, &str)] = &[("plugin", "string"), ("kind", "string"), ("version", "number"), ACTOR];

/// Every system event type.
pub const TYPES: &[SystemType] = &[
    SystemType {
        name: "customer.created",
        description: "A customer was created, by PUT or by its first event.",
        has_customer: true,
        properties: &[("name", "string"), ("fields", "object"), ACTOR],
    },
    SystemType {
        name: "customer.updated",
        description: "A customer's name or fields changed. `changed` lists the names; `changes.<name>.old` and \
                      `.new` hold the values.",
        has_customer: true,
        properties: &[("changed", "array"), ("changes", "object"), ACTOR],
    },
    SystemType {
        name: "customer.deleted",
        description: "A customer was deleted; its fields are as they were.",
        has_customer: true,
        properties: &[("name", "string"), ("fields", "object"), ACTOR],
    },
    SystemType { name: "rule.created", description: "A rule was created.", has_customer: false, properties: RULE },
    SystemType { name: "rule.updated", description: "A rule was replaced.", has_customer: false, properties: RULE },
    SystemType { name: "rule.deleted", description: "A rule was deleted.", has_customer: false, properties: RULE },
    SystemType {
        name: "channel.created",
        description: "A channel was created.",
        has_customer: false,
        properties: CHANNEL,
    },
    SystemType {
        name: "channel.updated",
        description: "A channel was replaced.",
        has_customer: false,
        properties: CHANNEL,
    },
    SystemType {
        name: "channel.deleted",
        description: "A channel was deleted.",
        has_customer: false,
        properties: CHANNEL,
    },
    SystemType {
        name: "channel.disabled",
        description: "Klaxon disabled a channel whose every attempt failed for `delivery.disable_after`; \
                      `reason` says why.",
        has_customer: false,
        properties: &[("channel_id", "string"), ("name", "string"), ("kind", "string"), ("reason", "string")],
    },
    SystemType {
        name: "plugin.uploaded",
        description: "A plugin version was uploaded.",
        has_customer: false,
        properties: PLUGIN,
    },
    SystemType {
        name: "plugin.pinned",
        description: "A plugin was pinned to a version (`version`), or set to follow its latest (`version` null).",
        has_customer: false,
        properties: PLUGIN,
    },
    SystemType {
        name: "plugin.disabled",
        description: "A plugin was disabled.",
        has_customer: false,
        properties: PLUGIN,
    },
    SystemType {
        name: "plugin.failing",
        description: "A plugin condition's call failed (a trap, a limit, bad output) while a rule was evaluated. \
                      Reported when no configuration incident about the plugin is open; it opens one.",
        has_customer: false,
        properties: &[("plugin", "string"), ("rule_id", "string"), ("error", "string")],
    },
    SystemType {
        name: "plugin.deleted",
        description: "A plugin was deleted.",
        has_customer: false,
        properties: PLUGIN,
    },
    SystemType {
        name: "delivery.failed",
        description: "A delivery gave up (a 410, a permanent error, or retries ran out). Its customer is the \
                      notification's, when it has one. A notification made from a `delivery.failed` event reports \
                      no `delivery.failed` of its own.",
        has_customer: true,
        properties: &[
            ("notification_id", "string"),
            ("rule_id", "string"),
            ("channel_id", "string"),
            ("attempts", "number"),
            ("error", "string"),
        ],
    },
];

pub const DELIVERY_FAILED: &str = "delivery.failed";
pub const CHANNEL_DISABLED: &str = "channel.disabled";
pub const PLUGIN_FAILING: &str = "plugin.failing";

/// Whether `event_type` is one Klaxon reserves for its own events.
pub fn is_system_type(event_type: &str) -> bool {
    TYPES.iter().any(|t| t.name == event_type)
}

/// A system event waiting in the outbox, with its tenant and, for customer events, the
/// customer as the change left it (a deleted one is gone by the time the event is matched).
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    pub tenant: String,
    pub event: Event,
    #[serde(default)]
    pub customer: Option<Customer>,
}

/// A system event of `event_type` at `now`. `actor` is the key that made the change, if any.
pub fn event(
    event_type: &str,
    customer_id: Option<&str>,
    properties: Value,
    actor: Option<&str>,
    now: Timestamp,
) -> Event {
    debug_assert!(is_system_type(event_type), "{event_type}");
    let mut properties: Map<String, Value> = match properties {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Some(actor) = actor {
        properties.insert("actor_key_id".into(), json!(actor));
    }
    Event {
        id: format!("sys_{:016x}{:08x}", crate::clock::sequence(now), rand::random::<u32>()),
        customer_id: customer_id.map(str::to_string),
        event_type: event_type.to_string(),
        timestamp: now,
        properties,
        received_at: now,
    }
}

impl Pending {
    /// A system event of the tenant waiting in the outbox. `customer` is the customer a
    /// customer event reports on, as the change left it (without its cohort tracks).
    pub fn new(tenant: &str, event: Event, customer: Option<&Customer>) -> Self {
        let customer = customer.map(|c| Customer { cohorts: Default::default(), ..c.clone() });
        Pending { tenant: tenant.to_string(), event, customer }
    }
}
