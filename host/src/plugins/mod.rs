//! Tenant WebAssembly plugins: the sandbox they run in, where they are kept, and how they are
//! built from source.
//!
//! Everything that touches wasmtime lives in `engine` (compiling, loading, calling, limits) and
//! `sandbox` (what a call's store holds and the host imports). `registry` keeps plugins and
//! their versions in the store and caches the loaded ones.

mod artifacts;
mod bindings;
pub mod build;
mod compile_cache;
mod engine;
pub mod io;
pub mod logs;
mod registry;
mod sandbox;
mod warm;

use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::store::StoreError;
use crate::tenants::Forbidden;

pub use compile_cache::CompileCache;
pub use engine::{CallEnv, CallReport, Compiled, Engine, Prepared, Tier};
pub use registry::{Plugin, PluginPatch, PluginVersion, Plugins};
pub use sandbox::LogLine;

/// The WIT world a plugin is built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Condition,
    Template,
    Channel,
}

impl PluginKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "condition" => Some(PluginKind::Condition),
            "template" => Some(PluginKind::Template),
            "channel" => Some(PluginKind::Channel),
            _ => None,
        }
    }

    /// The world's name in `version` of the WIT package.
    pub fn world(self, version: &str) -> String {
        let world = match self {
            PluginKind::Condition => "condition",
            PluginKind::Template => "template",
            PluginKind::Channel => "channel",
        };
        format!("klaxon:plugin/{world}@{version}")
    }
}

/// What can go wrong with a plugin, at upload or in a call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("the component does not compile: {0}")]
    Invalid(String),
    #[error("the component does not match the {world} world: {detail}")]
    WorldMismatch { world: String, detail: String },
    #[error("the plugin ran out of fuel: its budget of {0} instructions was used up")]
    FuelExhausted(u64),
    #[error("the plugin ran past its time limit of {0} ms")]
    Timeout(u64),
    #[error("the plugin asked for more memory than its limit of {0} bytes")]
    MemoryExceeded(u64),
    #[error("the plugin overflowed its stack")]
    StackOverflow,
    #[error("the call's input is {size} bytes, over the plugin's limit of {limit} bytes")]
    InputTooLarge { size: u64, limit: u64 },
    #[error("the plugin's output is {size} bytes, over its limit of {limit} bytes")]
    OutputTooLarge { size: u64, limit: u64 },
    #[error("the plugin trapped: {0}")]
    Trapped(String),
    #[error("the plugin returned an error: {0}")]
    Failed(String),
    #[error("the tenant calls its plugins faster than its {per_second} a second")]
    RateLimited { per_second: f64, retry_after: std::time::Duration },
    #[error("plugin host failure: {0}")]
    Host(String),
}

impl PluginError {
    /// The error's code, as the API and the metrics name it.
    pub fn code(&self) -> &'static str {
        match self {
            PluginError::NotAComponent(_) => "not_a_component",
            PluginError::Invalid(_) => "invalid_component",
            PluginError::WorldMismatch { .. } => "world_mismatch",
            PluginError::FuelExhausted(_) => "plugin_fuel_exhausted",
            PluginError::Timeout(_) => "plugin_timeout",
            PluginError::MemoryExceeded(_) => "plugin_memory_exceeded",
            PluginError::StackOverflow => "plugin_stack_overflow",
            PluginError::InputTooLarge { .. } => "plugin_input_too_large",
            PluginError::OutputTooLarge { .. } => "plugin_output_too_large",
            PluginError::Trapped(_) => "plugin_trapped",
            PluginError::Failed(_) => "plugin_error",
            PluginError::RateLimited { .. } => "rate_limited",
            PluginError::Host(_) => "internal",
        }
    }

    /// The limit a call hit, named as in `PluginLimits`.
    pub fn limit(&self) -> Option<&'static str> {
        match self {
            PluginError::FuelExhausted(_) => Some("fuel"),
            PluginError::Timeout(_) => Some("time_ms"),
            PluginError::MemoryExceeded(_) => Some("memory_bytes"),
            PluginError::StackOverflow => Some("stack"),
            PluginError::InputTooLarge { .. } => Some("input_bytes"),
            PluginError::OutputTooLarge { .. } => Some("output_bytes"),
            PluginError::RateLimited { .. } => Some("plugin_calls_per_second"),
            _ => None,
        }
    }
}

/// What managing or calling a tenant's plugins can come to, besides a plugin's own failure.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A bad value in a request, naming its field.
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{0} not found")]
    NotFound(String),
    /// The request does not fit what is stored (another kind of plugin under the name).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Invalid> for RegistryError {
    fn from(e: Invalid) -> Self {
        RegistryError::Invalid(e)
    }
}

pub type RegistryResult<T> = Result<T, RegistryError>;
