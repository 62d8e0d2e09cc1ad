//! Write Klaxon plugins in Rust.
//!
//! A condition plugin is a type implementing [`Condition`] plus one [`condition!`] line; a
//! template plugin is a [`Template`] plus one [`template!`] line. Build it into a component with
//! `klaxon plugins build <crate folder>`.
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
        path: "../wit/0.1.0",
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
        path: "../wit/0.1.0",
        world: "template",
        pub_export_macro: true,
        export_macro_name: "export_template",
        default_bindings_module: "klaxon_sdk::template_bindings",
        with: {
            "klaxon:plugin/types@0.1.0": crate::condition_bindings::klaxon::plugin::types,
            "klaxon:plugin/host@0.1.0": crate::condition_bindings::klaxon::plugin::host,
        },
    });
}

use condition_bindings::klaxon::plugin::host as imports;
pub use condition_bindings::klaxon::plugin::types::{
    AlertState, Context, Customer, Evaluation, Event, Notification, Payload, Rule, Severity, Transition, Value,
    Verdict, Window,
};

/// A custom condition.
pub trait Condition {
    /// The rule's plugin config, parsed from its JSON.
    type Config: DeserializeOwned;

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

/// Exports a [`Condition`] as the component's `condition` world.
#[macro_export]
macro_rules! condition {
    ($plugin:ty) => {
        struct KlaxonConditionExport;

        impl $crate::condition_bindings::Guest for KlaxonConditionExport {
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
    /// The customer's custom fields.
    pub fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.fields).unwrap_or_default()
    }
}

impl Event {
    /// The event's properties.
    pub fn properties(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.properties).unwrap_or_default()
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
        self.labels.push((key.into(), value.into()));
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
