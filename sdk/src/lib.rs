//! Write Klaxon plugins in Rust.
//!
//! A condition plugin is a type implementing [`Condition`] plus one [`condition!`] line; a
//! template plugin is a [`Template`] plus one [`template!`] line; a channel plugin is a
//! [`Channel`] plus one [`channel!`] line. Build it into a component with
//! `klaxon plugins build <crate folder>`. Plugins built with this SDK use the WIT package
//! `klaxon:plugin@0.3.0`: customer fields and event properties arrive typed, and a condition or
//! a channel publishes the JSON Schema of its config.
//!
//! ```ignore
//! use klaxon_sdk::{Condition, Evaluation, Verdict};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { above: f64 }
//!
//! struct Above;
//!
//! impl Condition for Above {
//!     type Config = Config;
//!     fn evaluate(config: Config, input: &Evaluation) -> Result<Verdict, String> {
//!         let value = input.current_value().ok_or("this condition needs a value")?;
//!         Ok(Verdict::when(value > config.above, value))
//!     }
//! }
//!
//! klaxon_sdk::condition!(Above);
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The generated bindings of the `condition` world.
#[doc(hidden)]
pub mod condition_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "condition",
        pub_export_macro: true,
        export_macro_name: "export_condition",
        default_bindings_module: "klaxon_sdk::condition_bindings",
    });
}

/// The generated bindings of the `template` world; they share the records and host imports of
/// the condition world.
#[doc(hidden)]
pub mod template_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "template",
        pub_export_macro: true,
        export_macro_name: "export_template",
        default_bindings_module: "klaxon_sdk::template_bindings",
        with: {
            "klaxon:plugin/types@0.3.0": crate::condition_bindings::klaxon::plugin::types,
            "klaxon:plugin/host@0.3.0": crate::condition_bindings::klaxon::plugin::host,
        },
    });
}

/// The generated bindings of the `channel` world; they share the records and host imports of
/// the condition world. (The generated glue takes an `http-request`'s fields one by one.)
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod channel_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "channel",
        pub_export_macro: true,
        export_macro_name: "export_channel",
        default_bindings_module: "klaxon_sdk::channel_bindings",
        with: {
            "klaxon:plugin/types@0.3.0": crate::condition_bindings::klaxon::plugin::types,
            "klaxon:plugin/host@0.3.0": crate::condition_bindings::klaxon::plugin::host,
        },
    });
}

use condition_bindings::klaxon::plugin::host as imports;
pub use condition_bindings::klaxon::plugin::types::{
    AlertState, CohortChange, Context, Customer, DeliveryOutcome, Evaluation, Event, Field, FieldValue, HttpRequest,
    HttpResponse, Label, Member, Notification, Payload, Rule, Severity, Transition, Value, Verdict, Window,
};

/// A custom condition.
pub trait Condition {
    /// The rule's plugin config, parsed from its JSON.
    type Config: DeserializeOwned;

    /// The JSON Schema (draft 2020-12) of `Config`, which consoles draw a form from. The default
    /// says only that the config is an object.
    fn config_schema() -> serde_json::Value {
        serde_json::json!({ "type": "object" })
    }

    /// Checks a config beyond what parsing it checks. The default accepts every config that
    /// parses.
    fn validate(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Decides whether the rule fires.
    fn evaluate(config: Self::Config, input: &Evaluation) -> Result<Verdict, String>;
}

/// A custom payload renderer.
pub trait Template {
    fn render(context: &Context) -> Result<Payload, String>;
}

/// A destination of its own: the requests that deliver a notification, which the host makes,
/// and what their answers mean.
pub trait Channel {
    /// The channel's config (secrets included), parsed from its JSON.
    type Config: DeserializeOwned;

    /// The JSON Schema (draft 2020-12) of `Config`. The default says only that it is an object.
    fn config_schema() -> serde_json::Value {
        serde_json::json!({ "type": "object" })
    }

    /// Checks a config beyond what parsing it checks.
    fn validate(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// The requests that deliver this notification, made one after another.
    fn requests(config: &Self::Config, context: &Context) -> Result<Vec<HttpRequest>, String>;

    /// What the answer to request `index` means. The default: 2xx delivered; 408, 429 and 5xx
    /// retried (after `Retry-After` seconds when given); anything else failed.
    fn classify(_config: &Self::Config, _index: u32, response: &HttpResponse) -> DeliveryOutcome {
        DeliveryOutcome::by_status(response)
    }
}

/// Exports a [`Condition`] as the component's `condition` world.
#[macro_export]
macro_rules! condition {
    ($plugin:ty) => {
        struct KlaxonConditionExport;

        impl $crate::condition_bindings::Guest for KlaxonConditionExport {
            fn config_schema() -> ::std::string::String {
                <$plugin as $crate::Condition>::config_schema().to_string()
            }

            fn validate(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                $crate::validate_with::<$plugin>(&config)
            }

            fn evaluate(input: $crate::Evaluation) -> ::std::result::Result<$crate::Verdict, ::std::string::String> {
                $crate::evaluate_with::<$plugin>(&input)
            }
        }

        $crate::condition_bindings::export_condition!(KlaxonConditionExport);
    };
}

/// Exports a [`Template`] as the component's `template` world.
#[macro_export]
macro_rules! template {
    ($plugin:ty) => {
        struct KlaxonTemplateExport;

        impl $crate::template_bindings::Guest for KlaxonTemplateExport {
            fn render(context: $crate::Context) -> ::std::result::Result<$crate::Payload, ::std::string::String> {
                $crate::log_panics();
                <$plugin as $crate::Template>::render(&context)
            }
        }

        $crate::template_bindings::export_template!(KlaxonTemplateExport);
    };
}

/// Exports a [`Channel`] as the component's `channel` world.
#[macro_export]
macro_rules! channel {
    ($plugin:ty) => {
        struct KlaxonChannelExport;

        impl $crate::channel_bindings::Guest for KlaxonChannelExport {
            fn config_schema() -> ::std::string::String {
                <$plugin as $crate::Channel>::config_schema().to_string()
            }

            fn validate(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                $crate::validate_channel_with::<$plugin>(&config)
            }

            fn requests(
                context: $crate::Context,
                config: ::std::string::String,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::HttpRequest>, ::std::string::String> {
                $crate::requests_with::<$plugin>(&context, &config)
            }

            fn classify(
                index: u32,
                response: $crate::HttpResponse,
                config: ::std::string::String,
            ) -> $crate::DeliveryOutcome {
                $crate::classify_with::<$plugin>(index, &response, &config)
            }
        }

        $crate::channel_bindings::export_channel!(KlaxonChannelExport);
    };
}

#[doc(hidden)]
pub fn validate_channel_with<C: Channel>(config: &str) -> Result<(), String> {
    log_panics();
    C::validate(&parse_config::<C::Config>(config)?)
}

#[doc(hidden)]
pub fn requests_with<C: Channel>(context: &Context, config: &str) -> Result<Vec<HttpRequest>, String> {
    log_panics();
    C::requests(&parse_config(config)?, context)
}

#[doc(hidden)]
pub fn classify_with<C: Channel>(index: u32, response: &HttpResponse, config: &str) -> DeliveryOutcome {
    log_panics();
    match parse_config(config) {
        Ok(config) => C::classify(&config, index, response),
        Err(e) => DeliveryOutcome::Failed(e),
    }
}

impl HttpRequest {
    /// A POST of `body` as JSON.
    pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> Self {
        HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl HttpResponse {
    /// A header's value, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl DeliveryOutcome {
    /// 2xx delivered; 408, 429 and 5xx retried (after `Retry-After` seconds when given);
    /// anything else failed with the status and the start of the body.
    pub fn by_status(response: &HttpResponse) -> Self {
        match response.status {
            200..=299 => DeliveryOutcome::Delivered,
            408 | 429 | 500..=599 => {
                DeliveryOutcome::Retry(response.header("retry-after").and_then(|v| v.trim().parse().ok()))
            }
            status => {
                let body = String::from_utf8_lossy(&response.body);
                DeliveryOutcome::Failed(format!("HTTP {status}: {}", body.chars().take(200).collect::<String>()))
            }
        }
    }
}

#[doc(hidden)]
pub fn validate_with<C: Condition>(config: &str) -> Result<(), String> {
    log_panics();
    C::validate(&parse_config::<C::Config>(config)?)
}

#[doc(hidden)]
pub fn evaluate_with<C: Condition>(input: &Evaluation) -> Result<Verdict, String> {
    log_panics();
    C::evaluate(parse_config(&input.config)?, input)
}

fn parse_config<T: DeserializeOwned>(config: &str) -> Result<T, String> {
    serde_json::from_str(config).map_err(|e| format!("invalid config: {e}"))
}

/// Sends panic messages to the host's log, so a trap comes with its reason.
#[doc(hidden)]
pub fn log_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| std::panic::set_hook(Box::new(|info| log::error(&format!("panic: {info}")))));
}

impl Evaluation {
    /// This window's value, when the rule has one.
    pub fn current_value(&self) -> Option<f64> {
        self.value.map(|v| v.current)
    }

    /// The previous window's value, when there is one.
    pub fn previous_value(&self) -> Option<f64> {
        self.value.and_then(|v| v.previous)
    }
}

impl Customer {
    /// One custom field's value.
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        find(&self.fields, name)
    }
}

impl Event {
    /// One property's value.
    pub fn property(&self, name: &str) -> Option<&FieldValue> {
        find(&self.properties, name)
    }
}

impl Member {
    /// One custom field's value.
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        find(&self.fields, name)
    }
}

/// The host sends fields in name order.
fn find<'a>(fields: &'a [Field], name: &str) -> Option<&'a FieldValue> {
    let at = fields.binary_search_by(|f| f.name.as_str().cmp(name)).ok()?;
    Some(&fields[at].value)
}

impl FieldValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Number(number) => Some(*number),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            FieldValue::Boolean(flag) => Some(*flag),
            _ => None,
        }
    }

    /// The value as JSON (an array or object parsed from its text).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            FieldValue::Null => serde_json::Value::Null,
            FieldValue::Boolean(flag) => (*flag).into(),
            FieldValue::Number(number) => {
                serde_json::Number::from_f64(*number).map_or(serde_json::Value::Null, Into::into)
            }
            FieldValue::Text(text) => text.as_str().into(),
            FieldValue::Json(text) => serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
        }
    }
}

impl Verdict {
    /// Fires with `value`.
    pub fn fire(value: f64) -> Self {
        Verdict { fire: true, value: Some(value), severity: None, message: None, labels: Vec::new() }
    }

    /// Does not fire; `value` is still reported.
    pub fn quiet(value: f64) -> Self {
        Verdict { fire: false, ..Verdict::fire(value) }
    }

    /// Fires with `value` when `fire` holds.
    pub fn when(fire: bool, value: f64) -> Self {
        Verdict { fire, ..Verdict::fire(value) }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }

    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push(Label { name: key.into(), value: value.into() });
        self
    }
}

impl Payload {
    /// A JSON body with `Content-Type: application/json`.
    pub fn json<T: Serialize>(body: &T) -> Result<Self, String> {
        let body = serde_json::to_string(body).map_err(|e| format!("cannot serialize the payload: {e}"))?;
        Ok(Payload { body, content_type: "application/json".into(), headers: Vec::new() })
    }
}

/// The plugin's log: lines show in the dry-run answer and the host's records.
pub mod log {
    use super::imports::{Level, log};

    pub fn debug(message: &str) {
        log(Level::Debug, message);
    }

    pub fn info(message: &str) {
        log(Level::Info, message);
    }

    pub fn warn(message: &str) {
        log(Level::Warn, message);
    }

    pub fn error(message: &str) {
        log(Level::Error, message);
    }
}

/// The current time as Unix milliseconds, from the host's clock.
pub fn now_millis() -> i64 {
    imports::now()
}

/// Small state kept by the host per (tenant, plugin, scope key), across calls and restarts.
pub mod kv {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::imports;

    pub fn get(key: &str) -> Option<Vec<u8>> {
        imports::kv_get(key)
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), String> {
        imports::kv_set(key, value)
    }

    pub fn delete(key: &str) {
        imports::kv_delete(key)
    }

    /// A JSON value stored under `key`; `None` when absent or unreadable.
    pub fn get_json<T: DeserializeOwned>(key: &str) -> Option<T> {
        get(key).and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }

    pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), String> {
        let bytes = serde_json::to_vec(value).map_err(|e| format!("cannot serialize {key}: {e}"))?;
        set(key, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> Customer {
        let field = |name: &str, value| Field { name: name.into(), value };
        Customer {
            id: "cus_1".into(),
            name: None,
            fields: vec![
                field("plan", FieldValue::Text("pro".into())),
                field("seats", FieldValue::Number(120.0)),
                field("tags", FieldValue::Json(r#"["a","b"]"#.into())),
                field("trial", FieldValue::Boolean(false)),
            ],
        }
    }

    #[test]
    fn a_customer_field_is_found_by_name_with_its_type() {
        let customer = customer();
        assert_eq!(customer.field("plan").and_then(FieldValue::as_str), Some("pro"));
        assert_eq!(customer.field("seats").and_then(FieldValue::as_f64), Some(120.0));
        assert_eq!(customer.field("trial").and_then(FieldValue::as_bool), Some(false));
        assert_eq!(customer.field("seats").and_then(FieldValue::as_str), None);
        assert!(customer.field("region").is_none());
        assert_eq!(customer.field("tags").map(FieldValue::to_json), Some(serde_json::json!(["a", "b"])));
    }

    #[test]
    fn a_verdict_carries_its_labels_in_order() {
        let verdict = Verdict::when(true, 3.0).with_label("plan", "pro").with_label("limit", "1000");
        let labels: Vec<_> = verdict.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        assert_eq!(labels, [("plan", "pro"), ("limit", "1000")]);
    }
}
