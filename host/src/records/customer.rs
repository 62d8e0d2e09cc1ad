//! A customer: its custom fields, its activity (kept with each event it sends), and where it
//! stands in each cohort.

use std::borrow::Cow;
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{CohortTrack, Event};
use crate::context::CustomerRef;

/// Event types tracked per customer; past this many, new types count only in `first_seen` and
/// `last_seen`.
const MAX_TRACKED_TYPES: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: Option<String>,
    /// Custom fields (`tier`, `seats`, `contract_end`, ...) that scopes and filters use.
    pub fields: Map<String, Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(flatten)]
    pub activity: Activity,
    /// Where it stands in each cohort of its tenant, by the version of the cohort's definition
    /// (a new definition starts afresh; a track no cohort has goes as the customer is written).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "super::track::codec")]
    pub cohorts: BTreeMap<u64, CohortTrack>,
}

/// What a customer's events say about it: its first and last event, and per event type the
/// first, the last and how many (system events are not activity).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    #[serde(default)]
    pub first_seen: Option<Timestamp>,
    #[serde(default)]
    pub last_seen: Option<Timestamp>,
    #[serde(default, rename = "activity")]
    pub by_type: BTreeMap<String, TypeActivity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeActivity {
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

impl Activity {
    /// Counts an event at `at` of `event_type`.
    pub fn record(&mut self, event_type: &str, at: Timestamp) {
        self.first_seen = Some(self.first_seen.map_or(at, |t| t.min(at)));
        self.last_seen = Some(self.last_seen.map_or(at, |t| t.max(at)));
        if let Some(seen) = self.by_type.get_mut(event_type) {
            seen.count += 1;
            seen.first_seen = seen.first_seen.min(at);
            seen.last_seen = seen.last_seen.max(at);
        } else if self.by_type.len() < MAX_TRACKED_TYPES {
            self.by_type.insert(event_type.to_string(), TypeActivity { count: 1, first_seen: at, last_seen: at });
        }
    }
}

/// Field names Klaxon keeps itself; a client cannot set custom fields by these names.
pub const RESERVED_FIELDS: [&str; 3] = ["first_seen", "last_seen", "activity"];

impl Customer {
    /// A customer known only by its id (an event named it, or a dry run needs one).
    pub fn blank(id: &str, now: Timestamp) -> Self {
        Customer {
            id: id.to_string(),
            name: None,
            fields: Map::new(),
            created_at: now,
            updated_at: now,
            activity: Activity::default(),
            cohorts: BTreeMap::new(),
        }
    }

    /// The customer as templates and plugins see it.
    pub fn to_ref(&self) -> CustomerRef {
        CustomerRef { id: self.id.clone(), name: self.name.clone(), fields: self.fields.clone() }
    }

    /// What a `customer.<name>` filter reads: `first_seen`, `last_seen`,
    /// `activity.<event type>.count|first_seen|last_seen`, or a custom field.
    pub fn field(&self, name: &str) -> Option<Cow<'_, Value>> {
        let time = |t: Timestamp| Cow::Owned(Value::String(t.to_string()));
        match name {
            "first_seen" => self.activity.first_seen.map(time),
            "last_seen" => self.activity.last_seen.map(time),
            _ => match name.strip_prefix("activity.").and_then(|rest| rest.rsplit_once('.')) {
                Some((event_type, stat)) => {
                    let seen = self.activity.by_type.get(event_type)?;
                    match stat {
                        "count" => Some(Cow::Owned(json!(seen.count))),
                        "first_seen" => Some(time(seen.first_seen)),
                        "last_seen" => Some(time(seen.last_seen)),
                        _ => None,
                    }
                }
                None => self.fields.get(name).map(Cow::Borrowed),
            },
        }
    }

    /// The customer without its cohort tracks (what rules read), cheaper to copy.
    pub fn without_tracks(&self) -> Customer {
        Customer {
            id: self.id.clone(),
            name: self.name.clone(),
            fields: self.fields.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            activity: self.activity.clone(),
            cohorts: BTreeMap::new(),
        }
    }

    /// Counts a tenant event in the customer's activity.
    pub fn saw(&mut self, event: &Event) {
        self.activity.record(&event.event_type, event.timestamp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_is_read_like_fields() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let mut c = Customer::blank("c", at("2030-01-01T00:00:00Z"));
        c.fields.insert("tier".into(), json!("pro"));
        c.activity.record("api.call", at("2030-01-02T00:00:00Z"));
        c.activity.record("api.call", at("2030-01-01T12:00:00Z"));
        assert_eq!(c.field("tier").as_deref(), Some(&json!("pro")));
        assert_eq!(c.field("first_seen").as_deref(), Some(&json!("2030-01-01T12:00:00Z")));
        assert_eq!(c.field("last_seen").as_deref(), Some(&json!("2030-01-02T00:00:00Z")));
        assert_eq!(c.field("activity.api.call.count").as_deref(), Some(&json!(2)));
        assert_eq!(c.field("activity.other.count"), None);
        let stored = serde_json::to_value(&c).unwrap();
        assert_eq!(stored["activity"]["api.call"]["count"], 2, "{stored}");
        let back: Customer = serde_json::from_value(stored).unwrap();
        assert_eq!(back.activity, c.activity);
    }
}
