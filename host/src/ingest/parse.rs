//! Checking what clients send: events, ids and custom fields.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::Ingest;
use crate::error::{Invalid, invalid};
use crate::records::RESERVED_FIELDS;
use crate::records::{Event, system};

/// How far ahead of the server's clock an event's timestamp may be (clock skew).
const MAX_FUTURE: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
const MAX_ID_BYTES: usize = 256;
const MAX_TYPE_BYTES: usize = 128;
const MAX_FIELD_NAME_BYTES: usize = 128;

/// An event as a client sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventInput {
    id: String,
    customer_id: String,
    #[serde(rename = "type")]
    event_type: String,
    timestamp: Timestamp,
    #[serde(default)]
    properties: Map<String, Value>,
}

impl Ingest {
    /// An event checked as ingest checks it, without keeping it (for dry runs).
    pub fn parse_event(&self, raw: Value) -> Result<Event, Invalid> {
        self.parse_event_at(raw, self.clock.now())
    }

    pub(super) fn parse_event_at(&self, raw: Value, now: Timestamp) -> Result<Event, Invalid> {
        let input: EventInput = serde_path_to_error::deserialize(raw).map_err(|e| {
            let inner = e.inner().to_string();
            let path = e.path().to_string();
            let field = match inner.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
                Some(missing) if path == "." => missing.to_string(),
                Some(missing) => format!("{path}.{missing}"),
                None if path == "." => "event".to_string(),
                None => path,
            };
            invalid(field, inner)
        })?;
        check_id("id", &input.id)?;
        check_id("customer_id", &input.customer_id)?;
        if input.event_type.is_empty() || input.event_type.len() > MAX_TYPE_BYTES {
            return Err(invalid("type", format!("must be 1 to {MAX_TYPE_BYTES} bytes")));
        }
        if system::is_system_type(&input.event_type) {
            return Err(invalid(
                "type",
                format!("`{}` is a system event type: Klaxon sends it itself", input.event_type),
            ));
        }
        if input.timestamp > now + MAX_FUTURE {
            return Err(invalid("timestamp", "is more than 24 hours ahead of the server's clock"));
        }
        if input.timestamp < now - self.cohorts.retention {
            return Err(invalid(
                "timestamp",
                format!(
                    "is older than the {} of events Klaxon keeps (ingest.event_retention)",
                    crate::duration::Duration(self.cohorts.retention)
                ),
            ));
        }
        Ok(Event {
            id: input.id,
            customer_id: Some(input.customer_id),
            event_type: input.event_type,
            timestamp: input.timestamp,
            properties: input.properties,
            received_at: now,
        })
    }
}

/// Ids: 1 to 256 bytes, no control characters.
pub fn check_id(field: &str, id: &str) -> Result<(), Invalid> {
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.chars().any(char::is_control) {
        return Err(invalid(field, format!("must be 1 to {MAX_ID_BYTES} bytes without control characters")));
    }
    Ok(())
}

/// Custom fields: names of 1 to 128 bytes, not one Klaxon keeps itself; values that filters
/// can compare (strings, numbers, booleans, null, or lists of those).
pub fn check_fields(fields: &Map<String, Value>) -> Result<(), Invalid> {
    for (name, value) in fields {
        if name.is_empty() || name.len() > MAX_FIELD_NAME_BYTES {
            return Err(invalid(
                format!("fields.{name}"),
                format!("field names must be 1 to {MAX_FIELD_NAME_BYTES} bytes"),
            ));
        }
        if RESERVED_FIELDS.contains(&name.as_str()) {
            return Err(invalid(format!("fields.{name}"), "is kept by Klaxon from the customer's events"));
        }
        let scalar = |v: &Value| !matches!(v, Value::Object(_) | Value::Array(_));
        let ok = match value {
            Value::Array(items) => items.iter().all(scalar),
            other => scalar(other),
        };
        if !ok {
            return Err(invalid(
                format!("fields.{name}"),
                "must be a string, number, boolean, null, or a list of those",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_must_be_comparable_and_not_reserved() {
        let fields = |v: Value| v.as_object().unwrap().clone();
        assert!(check_fields(&fields(json!({ "tier": "pro", "seats": 120, "tags": ["a", 1] }))).is_ok());
        let err = check_fields(&fields(json!({ "address": { "city": "Oslo" } }))).unwrap_err();
        assert_eq!(err.field, "fields.address");
        assert_eq!(check_fields(&fields(json!({ "last_seen": "x" }))).unwrap_err().field, "fields.last_seen");
    }

    #[test]
    fn ids_have_bounds() {
        assert!(check_id("id", "cus_1").is_ok());
        assert_eq!(check_id("id", "").unwrap_err().field, "id");
        assert!(check_id("id", "a\nb").is_err());
        assert!(check_id("id", &"x".repeat(257)).is_err());
    }
}
