//! Whether an event and its customer pass a rule's filters, and which scope key a customer
//! falls under.

use std::borrow::Cow;
use std::cmp::Ordering;

use jiff::Timestamp;
use serde_json::Value;

use super::condition::{EventPattern, Filter, Metric, Op, Scope};
use crate::records::{Customer, Event};

/// The scope key of the whole customer base.
pub const ALL: &str = "*";

impl Filter {
    /// Whether the field passes; `event` is absent when only a customer is being looked at.
    pub fn passes(&self, event: Option<&Event>, customer: &Customer) -> bool {
        let found = match self.field.split_once('.') {
            Some(("event", name)) => event.and_then(|e| e.property(name)).map(Cow::Borrowed),
            Some(("customer", name)) => customer.field(name),
            _ => None,
        };
        self.holds_for(found.as_deref())
    }

    /// Whether the value found in the filter's field (none when absent) passes.
    pub fn holds_for(&self, found: Option<&Value>) -> bool {
        let found = found.filter(|v| !v.is_null());
        match self.op {
            Op::Exists => found.is_some(),
            Op::NotEqual => !found.is_some_and(|v| any_item(v, |item| equal(item, &self.value))),
            Op::Equal => found.is_some_and(|v| any_item(v, |item| equal(item, &self.value))),
            Op::In => found.is_some_and(|v| {
                let options = self.value.as_array().map_or(&[][..], Vec::as_slice);
                any_item(v, |item| options.iter().any(|option| equal(item, option)))
            }),
            Op::Above | Op::AtLeast | Op::Below | Op::AtMost => found.is_some_and(|v| {
                any_item(v, |item| compare(item, &self.value).is_some_and(|order| self.op.holds(order)))
            }),
        }
    }
}

impl Op {
    /// Whether `left op right` holds, given how `left` compares with `right`.
    pub fn holds(self, order: Ordering) -> bool {
        match self {
            Op::Equal => order.is_eq(),
            Op::NotEqual => order.is_ne(),
            Op::Above => order.is_gt(),
            Op::AtLeast => order.is_ge(),
            Op::Below => order.is_lt(),
            Op::AtMost => order.is_le(),
            Op::In | Op::Exists => false,
        }
    }
}

/// A list field passes when any of its items does.
fn any_item(value: &Value, test: impl Fn(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().any(test),
        single => test(single),
    }
}

fn equal(left: &Value, right: &Value) -> bool {
    compare(left, right).is_some_and(Ordering::is_eq) || left == right
}

/// Numbers compare as numbers (a numeric string counts as a number against a number); two
/// RFC 3339 timestamps compare as times; other strings compare in byte order, which orders ISO
/// dates correctly; other pairs do not compare.
fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::String(l), Value::String(r)) => Some(match (as_time(l), as_time(r)) {
            (Some(l), Some(r)) => l.cmp(&r),
            _ => l.cmp(r),
        }),
        (Value::Bool(l), Value::Bool(r)) => Some(l.cmp(r)),
        _ => number(left)?.partial_cmp(&number(right)?),
    }
}

/// A string holding an RFC 3339 timestamp (only tried on strings shaped like one).
fn as_time(text: &str) -> Option<Timestamp> {
    let shaped = text.len() >= 20 && text.as_bytes()[..4].iter().all(u8::is_ascii_digit) && text.as_bytes()[10] == b'T';
    if shaped { text.parse().ok() } else { None }
}

/// A number, or a string holding one.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn all_pass(filters: &[Filter], event: Option<&Event>, customer: &Customer) -> bool {
    filters.iter().all(|f| f.passes(event, customer))
}

impl Metric {
    /// What the event adds to the metric: 1 for `count`, else its numeric property. `None` when
    /// it does not count: another type, a filter it fails, or the property missing or not a
    /// number.
    pub fn sample(&self, event: &Event, customer: &Customer) -> Option<f64> {
        if !self.event_types.contains(&event.event_type) || !all_pass(&self.filters, Some(event), customer) {
            return None;
        }
        match &self.property {
            None => Some(1.0),
            Some(name) => event.properties.get(name).and_then(number).filter(|x| x.is_finite()),
        }
    }
}

impl EventPattern {
    pub fn matches(&self, event: &Event, customer: &Customer) -> bool {
        self.event_type == event.event_type && all_pass(&self.filters, Some(event), customer)
    }
}

impl Scope {
    /// The scope key `customer` falls under, if it is in scope at all.
    pub fn key_for(&self, customer: &Customer) -> Option<String> {
        match self {
            Scope::All => Some(ALL.to_string()),
            Scope::Each => Some(customer.id.clone()),
            Scope::Customer { customer_id } => (*customer_id == customer.id).then(|| customer.id.clone()),
            Scope::Group { filters } => all_pass(filters, None, customer).then(|| customer.id.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn customer(fields: Value) -> Customer {
        let mut customer = Customer::blank("c1", jiff::Timestamp::UNIX_EPOCH);
        customer.fields = fields.as_object().unwrap().clone();
        customer
    }

    fn event(properties: Value) -> Event {
        let now = jiff::Timestamp::UNIX_EPOCH;
        Event {
            id: "e1".into(),
            customer_id: Some("c1".into()),
            event_type: "license.created".into(),
            timestamp: now,
            properties: properties.as_object().unwrap().clone(),
            received_at: now,
        }
    }

    fn filter(field: &str, op: Op, value: Value) -> Filter {
        Filter { field: field.into(), op, value }
    }

    #[test]
    fn filters_compare_events_and_customers() {
        let c =
            customer(json!({ "seats": 120, "tier": "Enterprise", "regions": ["eu", "us"], "renews": "2027-01-31" }));
        let e = event(json!({ "license_type": "community", "amount": "12.5" }));
        let passes = |f: Filter| f.passes(Some(&e), &c);
        assert!(passes(filter("customer.seats", Op::Above, json!(99))));
        assert!(!passes(filter("customer.seats", Op::Below, json!(99))));
        assert!(passes(filter("customer.tier", Op::Equal, json!("Enterprise"))));
        assert!(passes(filter("event.license_type", Op::In, json!(["paid", "community"]))));
        assert!(!passes(filter("event.license_type", Op::In, json!(["paid"]))));
        assert!(passes(filter("customer.regions", Op::Equal, json!("us"))), "any item of a list");
        assert!(passes(filter("event.amount", Op::AtLeast, json!(12.5))), "numeric strings are numbers");
        assert!(passes(filter("customer.renews", Op::Below, json!("2027-02-01"))), "ISO dates order as text");
        assert!(passes(filter("customer.missing", Op::NotEqual, json!("x"))));
        assert!(!passes(filter("customer.missing", Op::Above, json!(1))));
        assert!(passes(filter("event.license_type", Op::Exists, Value::Null)));
        assert!(!passes(filter("event.trial", Op::Exists, Value::Null)));
        assert!(!passes(filter("customer.seats", Op::Equal, json!("lots"))));
        let mut e = event(json!({ "changes": { "contract_end": { "new": "2031-01-01" } } }));
        e.event_type = "customer.updated".into();
        assert!(filter("event.changes.contract_end.new", Op::Equal, json!("2031-01-01")).passes(Some(&e), &c));
        let times = filter("customer.renews", Op::Above, json!("2027-01-31T00:00:00.5Z"));
        let mut late = c.clone();
        late.fields.insert("renews".into(), json!("2027-01-31T00:00:01Z"));
        assert!(times.passes(None, &late), "timestamps compare as times, not as text");
    }

    #[test]
    fn scopes_give_keys() {
        let c = customer(json!({ "tier": "Enterprise" }));
        assert_eq!(Scope::All.key_for(&c).as_deref(), Some(ALL));
        assert_eq!(Scope::Each.key_for(&c).as_deref(), Some("c1"));
        assert_eq!(Scope::Customer { customer_id: "c2".into() }.key_for(&c), None);
        let group = Scope::Group { filters: vec![filter("customer.tier", Op::Equal, json!("Enterprise"))] };
        assert_eq!(group.key_for(&c).as_deref(), Some("c1"));
    }
}
