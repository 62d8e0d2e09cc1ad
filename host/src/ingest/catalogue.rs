//! The event-type catalogue: per tenant, each event type as seen (how many, first and last,
//! its property names with their JSON types), kept in the ingest transaction, and the system
//! types with the properties their filters can read. Enough to build a filter without guessing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Ingest;
use crate::records::Event;
use crate::records::system::{self, SystemType};
use crate::store::{StoreResult, Tx, TxResult};

/// Property names kept per event type.
const MAX_PROPERTIES: usize = 100;

/// An event type as seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventTypeStats {
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Property name -> the JSON types seen for it.
    pub properties: BTreeMap<String, BTreeSet<String>>,
}

impl EventTypeStats {
    fn merge(&mut self, other: EventTypeStats) {
        self.count += other.count;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        for (name, types) in other.properties {
            if self.properties.len() < MAX_PROPERTIES || self.properties.contains_key(&name) {
                self.properties.entry(name).or_default().extend(types);
            }
        }
    }
}

/// `GET /v1/event-types`: the tenant's types, then the system types.
#[derive(Debug, Serialize)]
pub struct EventTypes {
    pub items: Vec<SeenType>,
    pub system: &'static [SystemType],
}

#[derive(Debug, Serialize)]
pub struct SeenType {
    #[serde(rename = "type")]
    pub name: String,
    #[serde(flatten)]
    pub stats: EventTypeStats,
}

/// What one batch saw, per type; merged into the catalogue at the end of its transaction.
#[derive(Default)]
pub(super) struct Seen {
    types: HashMap<String, EventTypeStats>,
}

impl Seen {
    pub fn add(&mut self, event: &Event) {
        let at = event.timestamp;
        let stats = self.types.entry(event.event_type.clone()).or_insert_with(|| EventTypeStats {
            count: 0,
            first_seen: at,
            last_seen: at,
            properties: BTreeMap::new(),
        });
        stats.count += 1;
        stats.first_seen = stats.first_seen.min(at);
        stats.last_seen = stats.last_seen.max(at);
        for (name, value) in event.properties.iter().take(MAX_PROPERTIES) {
            stats.properties.entry(name.clone()).or_default().insert(json_type(value).to_string());
        }
    }

    /// Merges what the batch saw into the catalogue's `shard`.
    pub fn write(self, tx: &Tx, tenant: &str, shard: u8) -> TxResult<()> {
        for (name, seen) in self.types {
            let stats = match tx.event_type::<EventTypeStats>(tenant, &name, shard)? {
                Some(mut stored) => {
                    stored.merge(seen);
                    stored
                }
                None => seen,
            };
            tx.put_event_type(tenant, &name, shard, &stats)?;
        }
        Ok(())
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Ingest {
    /// The tenant's event types, each merged from the catalogue's shards.
    pub fn event_types(&self, tenant: &str) -> StoreResult<EventTypes> {
        let mut items: Vec<SeenType> = Vec::new();
        for (name, stats) in self.store.event_types::<EventTypeStats>(tenant)? {
            match items.last_mut().filter(|last| last.name == name) {
                Some(last) => last.stats.merge(stats),
                None => items.push(SeenType { stats, name }),
            }
        }
        Ok(EventTypes { items, system: system::TYPES })
    }
}
