//! A cohort's definition as a client writes it, and its save-time checks: customer-field
//! filters ANDed with behaviour criteria.

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::error::{Check, invalid};
use crate::rules::condition::{FieldSource, Filter, Op, check_filters, check_usage_type};
use crate::series::window::{CalendarUnit, WindowSpec};

const MAX_NAME_BYTES: usize = 200;
const MAX_FILTERS: usize = 20;
const MAX_CRITERIA: usize = 10;

/// A cohort as a client writes it (`POST` and `PUT` take the whole cohort).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The IANA timezone calendar windows ("today", "this week") are cut in.
    #[serde(default = "utc")]
    pub timezone: String,
    /// Customer-field filters, all of which a member passes.
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Behaviour criteria, all of which a member meets.
    #[serde(default)]
    pub criteria: Vec<Criterion>,
}

fn utc() -> String {
    "UTC".to_string()
}

/// One behaviour criterion.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Criterion {
    /// Events of a type (any type when absent) passing the filters, counted `within` a window,
    /// compared with `count` (at least one by default).
    Performed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_type: Option<String>,
        #[serde(default)]
        filters: Vec<Filter>,
        #[serde(default)]
        count: Count,
        within: WindowSpec,
    },
    /// No such event `within` the window (and the customer existed for all of it).
    NotPerformed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_type: Option<String>,
        #[serde(default)]
        filters: Vec<Filter>,
        within: WindowSpec,
    },
    /// The customer's first event falls (`within`) or does not fall (`not_within`) in a window.
    FirstSeen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<WindowSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_within: Option<WindowSpec>,
    },
    /// The customer's latest event falls (`within`) or does not fall (`not_within`) in a window.
    LastSeen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<WindowSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_within: Option<WindowSpec>,
    },
}

/// A comparison of an event count with a number.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    pub op: Op,
    pub value: u64,
}

impl Default for Count {
    fn default() -> Self {
        Count { op: Op::AtLeast, value: 1 }
    }
}

impl CohortSpec {
    /// Every check that needs nothing but the cohort and how long events are kept: a window
    /// longer than that cannot be answered from the stored events.
    pub fn check(&self, retention: SignedDuration) -> Check {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_BYTES {
            return Err(invalid("name", format!("must be 1 to {MAX_NAME_BYTES} bytes")));
        }
        jiff::tz::TimeZone::get(&self.timezone).map_err(|_| {
            invalid("timezone", format!("`{}` is not an IANA timezone (e.g. Europe/Berlin)", self.timezone))
        })?;
        if self.filters.len() > MAX_FILTERS {
            return Err(invalid("filters", format!("at most {MAX_FILTERS} filters")));
        }
        check_filters("filters", &self.filters, FieldSource::Customer)?;
        if self.criteria.len() > MAX_CRITERIA {
            return Err(invalid("criteria", format!("at most {MAX_CRITERIA} criteria")));
        }
        if self.filters.is_empty() && self.criteria.is_empty() {
            return Err(invalid("criteria", "a cohort needs at least one filter or criterion"));
        }
        for (i, criterion) in self.criteria.iter().enumerate() {
            criterion.check(&format!("criteria[{i}]"), retention)?;
        }
        Ok(())
    }
}

impl Criterion {
    fn check(&self, at: &str, retention: SignedDuration) -> Check {
        match self {
            Criterion::Performed { event_type, filters, count, within } => {
                check_events(at, event_type, filters)?;
                if matches!(count.op, Op::In | Op::Exists) {
                    return Err(invalid(format!("{at}.count.op"), "must be one of = != > >= < <="));
                }
                check_window(&format!("{at}.within"), within, retention)
            }
            Criterion::NotPerformed { event_type, filters, within } => {
                check_events(at, event_type, filters)?;
                check_window(&format!("{at}.within"), within, retention)
            }
            Criterion::FirstSeen { within, not_within } | Criterion::LastSeen { within, not_within } => {
                match (within, not_within) {
                    (Some(window), None) => check_window(&format!("{at}.within"), window, retention),
                    (None, Some(window)) => check_window(&format!("{at}.not_within"), window, retention),
                    _ => Err(invalid(at, "give exactly one of `within` and `not_within`")),
                }
            }
        }
    }
}

fn check_events(at: &str, event_type: &Option<String>, filters: &[Filter]) -> Check {
    if let Some(event_type) = event_type {
        check_usage_type(&format!("{at}.event_type"), event_type)?;
    }
    check_filters(&format!("{at}.filters"), filters, FieldSource::Event)
}

/// A window must be positive and no longer than the events Klaxon keeps.
fn check_window(at: &str, window: &WindowSpec, retention: SignedDuration) -> Check {
    let longest = match window {
        WindowSpec::Rolling(d) => {
            if !d.0.is_positive() {
                return Err(invalid(format!("{at}.rolling"), "must be a positive duration"));
            }
            d.0
        }
        WindowSpec::Calendar(unit) => SignedDuration::from_hours(match unit {
            CalendarUnit::Hour => 1,
            CalendarUnit::Day => 25,
            CalendarUnit::Week => 7 * 24,
            CalendarUnit::Month => 31 * 24,
            CalendarUnit::Quarter => 92 * 24,
        }),
    };
    if longest > retention {
        return Err(invalid(
            at,
            format!(
                "reaches back {} but events are kept for {} (ingest.event_retention)",
                crate::duration::Duration(longest),
                crate::duration::Duration(retention)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(spec: serde_json::Value) -> String {
        let spec: CohortSpec = serde_json::from_value(spec).unwrap();
        spec.check(SignedDuration::from_hours(90 * 24)).unwrap_err().field
    }

    #[test]
    fn bad_cohorts_name_their_field() {
        let window = json!({ "rolling": "1d" });
        assert_eq!(field_of(json!({ "name": "" , "filters": []})), "name");
        assert_eq!(field_of(json!({ "name": "c" })), "criteria");
        assert_eq!(field_of(json!({ "name": "c", "timezone": "Mars/Olympus", "criteria": [] })), "timezone");
        assert_eq!(
            field_of(json!({ "name": "c", "filters": [{ "field": "event.x", "op": "=", "value": 1 }] })),
            "filters[0].field"
        );
        assert_eq!(
            field_of(json!({ "name": "c", "criteria": [{ "kind": "performed", "within": { "rolling": "365d" } }] })),
            "criteria[0].within"
        );
        assert_eq!(
            field_of(json!({ "name": "c", "criteria": [{ "kind": "performed", "event_type": "customer.updated",
                                                          "within": window }] })),
            "criteria[0].event_type"
        );
        assert_eq!(field_of(json!({ "name": "c", "criteria": [{ "kind": "last_seen" }] })), "criteria[0]");
        assert_eq!(
            field_of(json!({ "name": "c", "criteria": [{ "kind": "not_performed", "within": window,
                                                          "filters": [{ "field": "customer.x", "op": "exists" }] }] })),
            "criteria[0].filters[0].field"
        );
    }
}
