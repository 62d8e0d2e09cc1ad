//! The JSON a plugin call takes and gives over the API, its conversion to and from the WIT
//! records of each supported version, and the size of what crosses. A rule's config crosses as
//! JSON text; customer fields and event properties as JSON text in 0.1.0 and as typed fields
//! from 0.2.0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bindings::{v0_1, v0_2, v0_3};
use crate::context::{AlertState, Context, CustomerRef, EventRef, Member, NotificationRef, RuleRef, Severity, Window};

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

/// A request a channel plugin asks the host to make.
#[derive(Debug, Clone, Serialize)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the far side answered, as a channel plugin reads it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a channel plugin made of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// After this many seconds, when the plugin said.
    Retry(Option<u32>),
    Failed(String),
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
}

/// How many bytes a value carries across the boundary: the sum of its strings and lists.
pub trait WireSize {
    fn wire_size(&self) -> u64;
}

impl WireSize for () {
    fn wire_size(&self) -> u64 {
        0
    }
}

impl WireSize for String {
    fn wire_size(&self) -> u64 {
        self.len() as u64
    }
}

impl<T: WireSize> WireSize for Option<T> {
    fn wire_size(&self) -> u64 {
        self.as_ref().map_or(0, T::wire_size)
    }
}

impl<A: WireSize, B: WireSize> WireSize for (A, B) {
    fn wire_size(&self) -> u64 {
        self.0.wire_size() + self.1.wire_size()
    }
}

impl<T: WireSize> WireSize for Vec<T> {
    fn wire_size(&self) -> u64 {
        self.iter().map(T::wire_size).sum()
    }
}

/// The conversions and sizes that read the same in every version, once per version's types.
macro_rules! alike_in_every_version {
    ($v:ident) => {
        impl From<&Evaluation> for $v::types::Evaluation {
            fn from(e: &Evaluation) -> Self {
                $v::types::Evaluation {
                    rule: (&e.rule).into(),
                    scope_key: e.scope_key(),
                    customer: e.customer.as_ref().map(Into::into),
                    window: e.window.map(Into::into),
                    value: e.value.map(|v| $v::types::Value { current: v.current, previous: v.previous }),
                    event: e.event.as_ref().map(Into::into),
                    state: e.state.into(),
                    config: e.config.to_string(),
                }
            }
        }

        impl From<&RuleRef> for $v::types::Rule {
            fn from(r: &RuleRef) -> Self {
                $v::types::Rule {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    severity: r.severity.into(),
                    category: r.category.clone(),
                }
            }
        }

        impl From<Window> for $v::types::Window {
            fn from(w: Window) -> Self {
                $v::types::Window { start: w.start.as_millisecond(), end: w.end.as_millisecond() }
            }
        }

        impl From<&NotificationRef> for $v::types::Notification {
            fn from(n: &NotificationRef) -> Self {
                $v::types::Notification {
                    id: n.id.clone(),
                    timestamp: n.timestamp.as_millisecond(),
                    url: n.url.clone(),
                }
            }
        }

        impl From<Severity> for $v::types::Severity {
            fn from(s: Severity) -> Self {
                match s {
                    Severity::Info => $v::types::Severity::Info,
                    Severity::Warning => $v::types::Severity::Warning,
                    Severity::Critical => $v::types::Severity::Critical,
                }
            }
        }

        impl From<$v::types::Severity> for Severity {
            fn from(s: $v::types::Severity) -> Self {
                match s {
                    $v::types::Severity::Info => Severity::Info,
                    $v::types::Severity::Warning => Severity::Warning,
                    $v::types::Severity::Critical => Severity::Critical,
                }
            }
        }

        impl From<AlertState> for $v::types::AlertState {
            fn from(s: AlertState) -> Self {
                match s {
                    AlertState::Evaluating => $v::types::AlertState::Evaluating,
                    // The WIT worlds know no `pending`: to a plugin it is not (yet) in alarm.
                    AlertState::Ok | AlertState::Pending => $v::types::AlertState::Ok,
                    AlertState::InAlarm => $v::types::AlertState::InAlarm,
                }
            }
        }

        impl From<$v::types::Payload> for Payload {
            fn from(p: $v::types::Payload) -> Self {
                Payload { body: p.body, content_type: p.content_type, headers: p.headers }
            }
        }

        // Outputs are measured as they crossed, before conversion (duplicate labels included).
        impl WireSize for $v::types::Verdict {
            fn wire_size(&self) -> u64 {
                self.message.wire_size() + self.labels.wire_size()
            }
        }

        impl WireSize for $v::types::Payload {
            fn wire_size(&self) -> u64 {
                self.body.wire_size() + self.content_type.wire_size() + self.headers.wire_size()
            }
        }

        impl WireSize for $v::types::Rule {
            fn wire_size(&self) -> u64 {
                self.id.wire_size() + self.name.wire_size() + self.category.wire_size()
            }
        }

        impl WireSize for $v::types::Customer {
            fn wire_size(&self) -> u64 {
                self.id.wire_size() + self.name.wire_size() + self.fields.wire_size()
            }
        }

        impl WireSize for $v::types::Event {
            fn wire_size(&self) -> u64 {
                self.id.wire_size()
                    + self.customer_id.wire_size()
                    + self.event_type.wire_size()
                    + self.properties.wire_size()
            }
        }

        impl WireSize for $v::types::Evaluation {
            fn wire_size(&self) -> u64 {
                self.rule.wire_size()
                    + self.scope_key.wire_size()
                    + self.customer.wire_size()
                    + self.event.wire_size()
                    + self.config.wire_size()
            }
        }
    };
}

alike_in_every_version!(v0_1);
alike_in_every_version!(v0_2);
alike_in_every_version!(v0_3);

// 0.1.0: free-form data as JSON text, labels as pairs.

impl From<&CustomerRef> for v0_1::types::Customer {
    fn from(c: &CustomerRef) -> Self {
        v0_1::types::Customer {
            id: c.id.clone(),
            name: c.name.clone(),
            fields: Value::Object(c.fields.clone()).to_string(),
        }
    }
}

impl From<&EventRef> for v0_1::types::Event {
    fn from(e: &EventRef) -> Self {
        v0_1::types::Event {
            id: e.id.clone(),
            customer_id: e.customer_id.clone().unwrap_or_default(),
            event_type: e.event_type.clone(),
            timestamp: e.timestamp.as_millisecond(),
            properties: Value::Object(e.properties.clone()).to_string(),
        }
    }
}

impl From<&Context> for v0_1::types::Context {
    fn from(c: &Context) -> Self {
        v0_1::types::Context {
            tenant: c.tenant.clone(),
            rule: (&c.rule).into(),
            customer: c.customer.as_ref().map(Into::into),
            state: v0_1::types::Transition { previous: c.state.previous.into(), current: c.state.current.into() },
            value: c.value,
            threshold: c.threshold,
            window: c.window.map(Into::into),
            event: c.event.as_ref().map(Into::into),
            notification: (&c.notification).into(),
        }
    }
}

impl From<v0_1::types::Verdict> for Verdict {
    fn from(v: v0_1::types::Verdict) -> Self {
        Verdict {
            fire: v.fire,
            value: v.value,
            severity: v.severity.map(Into::into),
            message: v.message,
            labels: v.labels.into_iter().collect(),
        }
    }
}

impl WireSize for v0_1::types::Context {
    fn wire_size(&self) -> u64 {
        self.tenant.wire_size()
            + self.rule.wire_size()
            + self.customer.wire_size()
            + self.event.wire_size()
            + self.notification.id.wire_size()
            + self.notification.url.wire_size()
    }
}

// 0.2.0 and later: typed fields, labels as records, the cohort in a template's context.
macro_rules! typed_since_0_2 {
    ($v:ident, $here:ident) => {
        mod $here {
            use super::*;

            /// Fields in name order (the order of the JSON object's keys).
            fn fields(map: &Map<String, Value>) -> Vec<$v::types::Field> {
                use $v::types::FieldValue;
                map.iter()
                    .map(|(name, value)| $v::types::Field {
                        name: name.clone(),
                        value: match value {
                            Value::Null => FieldValue::Null,
                            Value::Bool(b) => FieldValue::Boolean(*b),
                            Value::Number(n) => {
                                n.as_f64().map_or_else(|| FieldValue::Json(n.to_string()), FieldValue::Number)
                            }
                            Value::String(s) => FieldValue::Text(s.clone()),
                            other => FieldValue::Json(other.to_string()),
                        },
                    })
                    .collect()
            }

            impl From<&CustomerRef> for $v::types::Customer {
                fn from(c: &CustomerRef) -> Self {
                    $v::types::Customer { id: c.id.clone(), name: c.name.clone(), fields: fields(&c.fields) }
                }
            }

            impl From<&EventRef> for $v::types::Event {
                fn from(e: &EventRef) -> Self {
                    $v::types::Event {
                        id: e.id.clone(),
                        customer_id: e.customer_id.clone(),
                        event_type: e.event_type.clone(),
                        timestamp: e.timestamp.as_millisecond(),
                        properties: fields(&e.properties),
                    }
                }
            }

            impl From<&Member> for $v::types::Member {
                fn from(m: &Member) -> Self {
                    $v::types::Member {
                        id: m.id.clone(),
                        name: m.name.clone(),
                        fields: fields(&m.fields),
                        at: m.at.as_millisecond(),
                    }
                }
            }

            impl From<&Context> for $v::types::Context {
                fn from(c: &Context) -> Self {
                    let members = |list: &[Member]| list.iter().map(Into::into).collect();
                    $v::types::Context {
                        tenant: c.tenant.clone(),
                        rule: (&c.rule).into(),
                        customer: c.customer.as_ref().map(Into::into),
                        state: $v::types::Transition {
                            previous: c.state.previous.into(),
                            current: c.state.current.into(),
                        },
                        value: c.value,
                        threshold: c.threshold,
                        window: c.window.map(Into::into),
                        event: c.event.as_ref().map(Into::into),
                        notification: (&c.notification).into(),
                        cohort: c.cohort.as_ref().map(|cohort| $v::types::CohortChange {
                            id: cohort.id.clone(),
                            name: cohort.name.clone(),
                            entered: members(&c.entered),
                            exited: members(&c.exited),
                            entered_count: u32::try_from(c.entered_count).unwrap_or(u32::MAX),
                            exited_count: u32::try_from(c.exited_count).unwrap_or(u32::MAX),
                        }),
                    }
                }
            }

            impl From<$v::types::Verdict> for Verdict {
                fn from(v: $v::types::Verdict) -> Self {
                    Verdict {
                        fire: v.fire,
                        value: v.value,
                        severity: v.severity.map(Into::into),
                        message: v.message,
                        labels: v.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                    }
                }
            }

            impl WireSize for $v::types::Field {
                fn wire_size(&self) -> u64 {
                    use $v::types::FieldValue;
                    self.name.wire_size()
                        + match &self.value {
                            FieldValue::Text(s) | FieldValue::Json(s) => s.wire_size(),
                            FieldValue::Null | FieldValue::Boolean(_) | FieldValue::Number(_) => 8,
                        }
                }
            }

            impl WireSize for $v::types::Label {
                fn wire_size(&self) -> u64 {
                    self.name.wire_size() + self.value.wire_size()
                }
            }

            impl WireSize for $v::types::Member {
                fn wire_size(&self) -> u64 {
                    self.id.wire_size() + self.name.wire_size() + self.fields.wire_size()
                }
            }

            impl WireSize for $v::types::Context {
                fn wire_size(&self) -> u64 {
                    let cohort = self.cohort.as_ref().map_or(0, |c| {
                        c.id.wire_size() + c.name.wire_size() + c.entered.wire_size() + c.exited.wire_size()
                    });
                    self.tenant.wire_size()
                        + self.rule.wire_size()
                        + self.customer.wire_size()
                        + self.event.wire_size()
                        + self.notification.id.wire_size()
                        + self.notification.url.wire_size()
                        + cohort
                }
            }
        }
    };
}

typed_since_0_2!(v0_2, typed_v0_2);
typed_since_0_2!(v0_3, typed_v0_3);

// 0.3.0: the channel world's requests and answers.

impl From<v0_3::types::HttpRequest> for HttpRequest {
    fn from(r: v0_3::types::HttpRequest) -> Self {
        HttpRequest { method: r.method, url: r.url, headers: r.headers, body: r.body }
    }
}

impl From<&HttpResponse> for v0_3::types::HttpResponse {
    fn from(r: &HttpResponse) -> Self {
        v0_3::types::HttpResponse { status: r.status, headers: r.headers.clone(), body: r.body.clone() }
    }
}

impl From<v0_3::types::DeliveryOutcome> for DeliveryOutcome {
    fn from(o: v0_3::types::DeliveryOutcome) -> Self {
        match o {
            v0_3::types::DeliveryOutcome::Delivered => DeliveryOutcome::Delivered,
            v0_3::types::DeliveryOutcome::Retry(after) => DeliveryOutcome::Retry(after),
            v0_3::types::DeliveryOutcome::Failed(reason) => DeliveryOutcome::Failed(reason),
        }
    }
}

impl WireSize for v0_3::types::HttpRequest {
    fn wire_size(&self) -> u64 {
        self.method.wire_size() + self.url.wire_size() + self.headers.wire_size() + self.body.len() as u64
    }
}

impl WireSize for v0_3::types::HttpResponse {
    fn wire_size(&self) -> u64 {
        self.headers.wire_size() + self.body.len() as u64
    }
}

impl WireSize for v0_3::types::DeliveryOutcome {
    fn wire_size(&self) -> u64 {
        match self {
            v0_3::types::DeliveryOutcome::Failed(reason) => reason.wire_size(),
            _ => 8,
        }
    }
}
