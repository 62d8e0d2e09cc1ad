//! The JSON a plugin call takes and gives over the API, and its conversion to and from the WIT
//! records. Free-form parts (config, customer fields, event properties) cross as JSON text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bindings::v0_1::types;
use crate::context::{AlertState, Context, CustomerRef, EventRef, NotificationRef, RuleRef, Severity, Window};

/// The input of a condition plugin's `evaluate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    pub rule: RuleRef,
    /// Defaults to the customer's id, or `*` when there is no customer.
    #[serde(default)]
    pub scope_key: Option<String>,
    #[serde(default)]
    pub customer: Option<CustomerRef>,
    #[serde(default)]
    pub window: Option<Window>,
    #[serde(default)]
    pub value: Option<ValuePair>,
    #[serde(default)]
    pub event: Option<EventRef>,
    #[serde(default)]
    pub state: AlertState,
    #[serde(default = "empty_object")]
    pub config: Value,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuePair {
    pub current: f64,
    #[serde(default)]
    pub previous: Option<f64>,
}

/// A condition's verdict, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub fire: bool,
    pub value: Option<f64>,
    pub severity: Option<Severity>,
    pub message: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// A template's payload, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Payload {
    pub body: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl Evaluation {
    pub fn scope_key(&self) -> String {
        self.scope_key
            .clone()
            .or_else(|| self.customer.as_ref().map(|c| c.id.clone()))
            .unwrap_or_else(|| "*".to_string())
    }

    pub fn to_wit(&self) -> types::Evaluation {
        types::Evaluation {
            rule: (&self.rule).into(),
            scope_key: self.scope_key(),
            customer: self.customer.as_ref().map(Into::into),
            window: self.window.map(Into::into),
            value: self.value.map(|v| types::Value { current: v.current, previous: v.previous }),
            event: self.event.as_ref().map(Into::into),
            state: self.state.into(),
            config: self.config.to_string(),
        }
    }
}

impl From<&Context> for types::Context {
    fn from(c: &Context) -> Self {
        types::Context {
            tenant: c.tenant.clone(),
            rule: (&c.rule).into(),
            customer: c.customer.as_ref().map(Into::into),
            state: types::Transition { previous: c.state.previous.into(), current: c.state.current.into() },
            value: c.value,
            threshold: c.threshold,
            window: c.window.map(Into::into),
            event: c.event.as_ref().map(Into::into),
            notification: (&c.notification).into(),
        }
    }
}

impl From<&RuleRef> for types::Rule {
    fn from(r: &RuleRef) -> Self {
        types::Rule {
            id: r.id.clone(),
            name: r.name.clone(),
            severity: r.severity.into(),
            category: r.category.clone(),
        }
    }
}

impl From<&CustomerRef> for types::Customer {
    fn from(c: &CustomerRef) -> Self {
        types::Customer { id: c.id.clone(), name: c.name.clone(), fields: Value::Object(c.fields.clone()).to_string() }
    }
}

impl From<Window> for types::Window {
    fn from(w: Window) -> Self {
        types::Window { start: w.start.as_millisecond(), end: w.end.as_millisecond() }
    }
}

impl From<&EventRef> for types::Event {
    fn from(e: &EventRef) -> Self {
        types::Event {
            id: e.id.clone(),
            customer_id: e.customer_id.clone().unwrap_or_default(),
            event_type: e.event_type.clone(),
            timestamp: e.timestamp.as_millisecond(),
            properties: Value::Object(e.properties.clone()).to_string(),
        }
    }
}

impl From<&NotificationRef> for types::Notification {
    fn from(n: &NotificationRef) -> Self {
        types::Notification { id: n.id.clone(), timestamp: n.timestamp.as_millisecond(), url: n.url.clone() }
    }
}

impl From<Severity> for types::Severity {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Info => types::Severity::Info,
            Severity::Warning => types::Severity::Warning,
            Severity::Critical => types::Severity::Critical,
        }
    }
}

impl From<types::Severity> for Severity {
    fn from(s: types::Severity) -> Self {
        match s {
            types::Severity::Info => Severity::Info,
            types::Severity::Warning => Severity::Warning,
            types::Severity::Critical => Severity::Critical,
        }
    }
}

impl From<AlertState> for types::AlertState {
    fn from(s: AlertState) -> Self {
        match s {
            AlertState::Evaluating => types::AlertState::Evaluating,
            AlertState::Ok => types::AlertState::Ok,
            AlertState::InAlarm => types::AlertState::InAlarm,
        }
    }
}

impl From<types::Verdict> for Verdict {
    fn from(v: types::Verdict) -> Self {
        Verdict {
            fire: v.fire,
            value: v.value,
            severity: v.severity.map(Into::into),
            message: v.message,
            labels: v.labels.into_iter().collect(),
        }
    }
}

impl From<types::Payload> for Payload {
    fn from(p: types::Payload) -> Self {
        Payload { body: p.body, content_type: p.content_type, headers: p.headers }
    }
}
