//! An event: what a tenant sent (or what Klaxon itself emitted, for system events).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    /// Every tenant event names its customer; a system event only when it concerns one.
    pub customer_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub timestamp: Timestamp,
    pub properties: Map<String, Value>,
    pub received_at: Timestamp,
}

impl Event {
    /// A property, by name or by a dotted path into nested objects (`changes.tier.new`).
    pub fn property(&self, path: &str) -> Option<&Value> {
        if let Some(value) = self.properties.get(path) {
            return Some(value);
        }
        let mut parts = path.split('.');
        let mut at = self.properties.get(parts.next()?)?;
        for part in parts {
            at = at.as_object()?.get(part)?;
        }
        Some(at)
    }
}
