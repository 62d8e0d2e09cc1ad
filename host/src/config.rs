//! Server configuration: an embedded default, then a TOML file, then environment variables and
//! flags (the last two merged by clap, flags winning). Validated once at start.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::channels::address::AddressPolicy;
use crate::cluster::ClusterConfig;
use crate::delivery::settings::{DeliveryConfig, SmtpConfig};
use crate::duration::Duration;
use crate::tenants::{PluginLimits, UsageLimits};

/// The defaults, compiled into the binary.
const DEFAULT_TOML: &str = include_str!("../klaxon.default.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The database's page cache, in bytes.
    pub cache_bytes: u64,
    pub log_format: LogFormat,
    /// The platform admin token. When unset, one is generated on first start and kept in
    /// `<data_dir>/admin-token`.
    #[serde(default)]
    pub admin_token: Option<String>,
    /// Largest plugin component accepted at upload, in bytes.
    pub max_plugin_bytes: usize,
    /// What the functions compiled at the optimized tier, kept to speed up later optimizing,
    /// may take, in bytes; past it the least recently used go.
    pub compile_cache_bytes: u64,
    /// What the instances kept warm between calls may hold in linear memory together, in bytes
    /// (0: none is kept).
    pub warm_instance_bytes: u64,
    /// Per-call plugin limits a new tenant starts with.
    pub plugin_limits: PluginLimits,
    pub ingest: IngestLimits,
    pub delivery: DeliveryConfig,
    /// The SMTP server email channels send through; email channels are refused without one.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// Time stands still and moves only by `PUT /v1/clock`: for tests, never for production.
    pub manual_clock: bool,
    /// Where the manual clock starts (a flag only; none: the time the server starts).
    #[serde(skip)]
    pub manual_clock_start: Option<jiff::Timestamp>,
    pub store: StoreConfig,
    pub cluster: ClusterConfig,
    pub audit: AuditConfig,
    /// What each tenant may use unless the platform admin sets its own.
    pub tenant_limits: UsageLimits,
}

/// The audit trail of changes made through the API.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// How long an entry is kept.
    pub retention: Duration,
}

/// Where the state is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// A PostgreSQL URL (`postgres://...`), the same for every node of a cluster; empty: the
    /// embedded database in `data_dir`.
    pub url: String,
    /// Connections to PostgreSQL per node.
    pub pool: usize,
}

/// How much one `POST /v1/events` may carry.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestLimits {
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    /// How long events are kept (by their timestamp); older ones are refused and pruned, and
    /// no cohort window may reach further back.
    pub event_retention: Duration,
}

/// The parts of the configuration flags and environment variables can override.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Address the HTTP API listens on.
    #[arg(long, env = "KLAXON_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder holding the sled database and the admin token.
    #[arg(long, env = "KLAXON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "KLAXON_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// For tests: time stands still and moves only by `PUT /v1/clock` (platform admin).
    #[arg(long, env = "KLAXON_MANUAL_CLOCK")]
    pub manual_clock: bool,
    /// For tests: the manual clock starts at this time (RFC 3339) instead of now; implies
    /// `--manual-clock`.
    #[arg(long, env = "KLAXON_MANUAL_CLOCK_START")]
    pub manual_clock_start: Option<jiff::Timestamp>,
    /// Where the state is kept: a PostgreSQL URL (`postgres://user@host/db`), the same for
    /// every node of a cluster; without it, the embedded database in the data folder.
    #[arg(long, env = "KLAXON_STORE")]
    pub store: Option<String>,
    /// A TOML configuration file, read over the embedded defaults.
    #[arg(long, env = "KLAXON_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config{}: {source}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Parse { path: Option<PathBuf>, source: toml::de::Error },
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// The async runtime's worker threads: one per core, and on PostgreSQL at least one per
    /// connection, since the store's calls wait for their round trips on the thread that makes
    /// them (a thread waiting on the database must not leave requests and attempts unserved).
    pub fn worker_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if self.store.url.is_empty() { cores } else { cores.max(self.store.pool) }
    }

    /// Loads the configuration: embedded defaults, the file if any, then the overrides.
    /// `KLAXON_ADMIN_TOKEN` is read from the environment here so it never shows up as a flag.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            DEFAULT_TOML.parse().map_err(|source| ConfigError::Parse { path: None, source })?;
        if let Some(path) = &overrides.config {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
            let file: toml::Table =
                text.parse().map_err(|source| ConfigError::Parse { path: Some(path.clone()), source })?;
            merge(&mut table, file);
        }
        let mut config: Config =
            table.try_into().map_err(|source| ConfigError::Parse { path: overrides.config.clone(), source })?;
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &overrides.store {
            config.store.url = url.clone();
        }
        if let Some(format) = overrides.log_format {
            config.log_format = format;
        }
        config.manual_clock |= overrides.manual_clock || overrides.manual_clock_start.is_some();
        config.manual_clock_start = overrides.manual_clock_start;
        if let Ok(token) = std::env::var("KLAXON_ADMIN_TOKEN") {
            config.admin_token = Some(token);
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.admin_token
            && token.len() < 16
        {
            return Err(ConfigError::Invalid("admin_token must be at least 16 characters".into()));
        }
        for (name, value) in [
            ("max_plugin_bytes", self.max_plugin_bytes),
            ("ingest.max_batch_events", self.ingest.max_batch_events),
            ("ingest.max_batch_bytes", self.ingest.max_batch_bytes),
            ("store.pool", self.store.pool),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be above 0")));
            }
        }
        for (name, value) in [("cache_bytes", self.cache_bytes), ("compile_cache_bytes", self.compile_cache_bytes)] {
            if value < 1 << 20 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1048576 (1 MiB)")));
            }
        }
        let url = &self.store.url;
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(ConfigError::Invalid(
                "store.url must be a postgres:// URL, or empty for the embedded database".into(),
            ));
        }
        if self.delivery.timeout_ms == 0 || self.delivery.max_in_flight == 0 {
            return Err(ConfigError::Invalid("delivery.timeout_ms and delivery.max_in_flight must be above 0".into()));
        }
        let advertise = &self.cluster.advertise;
        if !advertise.is_empty() && !advertise.starts_with("http://") && !advertise.starts_with("https://") {
            return Err(ConfigError::Invalid(
                "cluster.advertise must be an http:// or https:// URL, or empty for the listening address".into(),
            ));
        }
        if self.cluster.lease.0 < jiff::SignedDuration::from_secs(1) {
            return Err(ConfigError::Invalid("cluster.lease must be at least 1s".into()));
        }
        self.tenant_limits
            .check("tenant_limits")
            .map_err(|e| ConfigError::Invalid(format!("{}: {}", e.field, e.message)))?;
        if !self.audit.retention.0.is_positive() {
            return Err(ConfigError::Invalid("audit.retention must be positive".into()));
        }
        if !self.ingest.event_retention.0.is_positive() {
            return Err(ConfigError::Invalid("ingest.event_retention must be positive".into()));
        }
        if !self.delivery.give_up_after.0.is_positive() || !self.delivery.disable_after.0.is_positive() {
            return Err(ConfigError::Invalid(
                "delivery.give_up_after and delivery.disable_after must be positive".into(),
            ));
        }
        AddressPolicy::new(&self.delivery.allow_private)
            .map_err(|e| ConfigError::Invalid(format!("delivery.allow_private: {e}")))?;
        if let Some(smtp) = &self.smtp
            && let Err(e) = smtp.from.parse::<lettre::message::Mailbox>()
        {
            return Err(ConfigError::Invalid(format!("smtp.from `{}`: {e}", smtp.from)));
        }
        self.plugin_limits.validate().map_err(|e| ConfigError::Invalid(format!("plugin_limits.{e}")))
    }
}

/// Overlays `over` onto `base`, table by table.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let config = Config::load(&Overrides::default()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./klaxon-data"));
    }

    #[test]
    fn file_overrides_defaults_and_flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("klaxon.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\n[plugin_limits]\nfuel = 1234\n").unwrap();
        let overrides =
            Overrides { config: Some(path), data_dir: Some("/tmp/elsewhere".into()), ..Overrides::default() };
        let config = Config::load(&overrides).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(config.plugin_limits.fuel, 1234);
        assert_eq!(config.plugin_limits.time_ms, 100, "untouched keys keep defaults");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/elsewhere"));
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/klaxon.toml");
        let config = Config::load(&Overrides { config: Some(path), ..Overrides::default() }).unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.plugin_limits.time_ms, 50);
    }

    /// Why a config file of `text` is refused.
    fn refusal(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("klaxon.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&Overrides { config: Some(path), ..Overrides::default() }).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = refusal("lsiten = \"127.0.0.1:9000\"\n");
        assert!(err.contains("lsiten"), "{err}");
    }

    #[test]
    fn a_cluster_address_that_is_not_a_url_is_refused() {
        let err = refusal("[cluster]\nadvertise = \"10.0.0.11:8080\"\n");
        assert!(err.contains("cluster.advertise must be an http:// or https:// URL"), "{err}");
    }

    #[test]
    fn on_postgresql_the_runtime_has_a_worker_per_connection() {
        let cores = std::thread::available_parallelism().unwrap().get();
        let mut config = Config::load(&Overrides::default()).unwrap();
        assert_eq!(config.worker_threads(), cores, "the embedded database: one per core");
        config.store.url = "postgres://klaxon@db/klaxon".into();
        config.store.pool = 24;
        assert_eq!(config.worker_threads(), cores.max(24));
    }

    #[test]
    fn a_compile_cache_under_one_mib_is_refused() {
        let err = refusal("compile_cache_bytes = 1000\n");
        assert!(err.contains("compile_cache_bytes must be at least 1048576"), "{err}");
    }
}
