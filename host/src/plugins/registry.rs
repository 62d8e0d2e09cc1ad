//! Where plugins are kept: each upload is a new immutable version (the component as uploaded
//! and its compiled artifact), and the version in use is loaded once and cached. A version is
//! first compiled at the baseline tier; the optimizer thread compiles the loaded ones again at
//! the optimized tier and swaps them in.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak, mpsc};
use std::time::Instant;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::artifacts::{Artifacts, Code};
use super::engine::{CallEnv, CallReport, Compiled, Prepared, Tier};
use super::io::{DeliveryOutcome, Evaluation, HttpRequest, HttpResponse, Payload, Verdict};
use super::logs::{self, KeptLine, LogQuery, PluginLogs};
use super::{Engine, PluginError, PluginKind};
use super::{RegistryError, RegistryResult};
use crate::clock::SharedClock;
use crate::context::Context;
use crate::error::invalid;
use crate::ids::hex;
use crate::metrics::{Metrics, PluginCall, PluginRef};
use crate::store::Store;
use crate::store::plugins::{plugin_id, plugin_of_version, version_id};
use crate::tenants::buckets::{Buckets, Rate};
use crate::tenants::{Action, LimitOverrides, PluginLimits, Resource, Tenant, TenantKey};

/// A tenant's plugin: its versions share a name and a kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plugin {
    pub name: String,
    pub kind: PluginKind,
    pub enabled: bool,
    /// The version in use; `None` follows the latest upload.
    pub pinned_version: Option<u32>,
    pub latest_version: u32,
    /// This plugin's own limits, below the tenant's.
    pub limits: LimitOverrides,
    /// The key that created it: editors may change only their own plugins.
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Plugin {
    pub fn active_version(&self) -> u32 {
        self.pinned_version.unwrap_or(self.latest_version)
    }
}

/// One immutable upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginVersion {
    pub version: u32,
    pub sha256: String,
    pub size_bytes: u64,
    /// The interfaces the component imports (the world's own, and WASI if it uses it).
    pub imports: Vec<String>,
    /// The version of the WIT package `klaxon:plugin` the component was built against.
    #[serde(default = "first_wit_version")]
    pub wit_version: String,
    /// The JSON Schema of a condition's config, as its `config-schema` gave it (0.2.0 and later).
    #[serde(default)]
    pub config_schema: Option<Value>,
    pub uploaded_by: String,
    pub uploaded_at: Timestamp,
}

/// Versions stored before the WIT version was recorded were all built against the first.
fn first_wit_version() -> String {
    super::bindings::v0_1::VERSION.to_string()
}

/// A change to a plugin's settings; absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginPatch {
    pub enabled: Option<bool>,
    /// A version number to pin, or `null` to follow the latest upload.
    #[serde(default, deserialize_with = "present")]
    pub pinned_version: Option<Option<u32>>,
    pub limits: Option<LimitOverrides>,
}

/// Tells `"field": null` (Some(None)) from a missing field (None).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

pub struct Plugins {
    store: Store,
    engine: Arc<Engine>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    /// Loaded versions by version key.
    loaded: RwLock<HashMap<String, Loaded>>,
    /// Serializes changes to plugin records, so concurrent uploads get distinct versions.
    writes: tokio::sync::Mutex<()>,
    /// Bounds concurrent compilations: they are CPU-heavy.
    compiles: tokio::sync::Semaphore,
    /// Per tenant, bounds the calls that run at once to the number of cores: a tenant flooding
    /// slow plugins queues behind itself and cannot starve other tenants' calls of CPU (and so
    /// of their wall-time budget).
    calls: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    cores: usize,
    /// Each tenant's calls per second (`plugin_calls_per_second`: the tenant's own limit, else
    /// `calls_per_second`; none in a backtest's sandbox, whose calls the backtest bounds).
    rates: Buckets<String>,
    calls_per_second: Option<f64>,
    logs: PluginLogs,
    artifacts: Arc<Artifacts>,
    /// Loaded versions waiting for, or being given, optimized code, and the optimizer's queue.
    optimizing: Mutex<HashSet<String>>,
    optimizer: Mutex<mpsc::Sender<String>>,
}

/// A version's code, ready to call, and the hash of the component it was compiled from.
struct Loaded {
    sha256: String,
    prepared: Prepared,
}

/// Plugin names: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
pub fn check_name(name: &str) -> RegistryResult<()> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "must be 1 to 64 characters of lowercase letters, digits, '-' and '_', starting with a letter or digit",
        )
        .into())
    }
}

impl Plugins {
    /// The registry, and its optimizer thread (which ends with it).
    pub fn new(
        store: Store,
        engine: Arc<Engine>,
        clock: SharedClock,
        metrics: Arc<Metrics>,
        calls_per_second: Option<f64>,
    ) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (queue, jobs) = mpsc::channel();
        let plugins = Arc::new(Plugins {
            engine,
            clock,
            metrics,
            loaded: RwLock::default(),
            writes: tokio::sync::Mutex::new(()),
            compiles: tokio::sync::Semaphore::new(cores),
            calls: Default::default(),
            cores,
            rates: Buckets::default(),
            calls_per_second,
            logs: PluginLogs::new(store.clone()),
            artifacts: Arc::new(Artifacts::new(store.dir.join("artifacts"))),
            store,
            optimizing: Mutex::default(),
            optimizer: Mutex::new(queue),
        });
        let registry = Arc::downgrade(&plugins);
        std::thread::Builder::new()
            .name("klaxon-optimizer".into())
            .spawn(move || optimize_all(&registry, &jobs))
            .expect("the optimizer thread starts");
        plugins
    }

    /// Loads the version in use of every plugin, so the first call does not wait. Returns how
    /// many were loaded.
    pub async fn load_all(&self) -> RegistryResult<usize> {
        let plugins: Vec<(String, Plugin)> = self.store.every_plugin()?;
        let mut loaded = 0;
        for (tenant, plugin) in &plugins {
            // One plugin that cannot load must not keep the server down: its calls will say why.
            match self.prepared(tenant, plugin).await {
                Ok(_) => loaded += 1,
                Err(error) => tracing::error!(%tenant, plugin = %plugin.name, %error, "cannot load a stored plugin"),
            }
        }
        Ok(loaded)
    }

    /// How many versions are loaded with code of each tier.
    pub fn loaded_count(&self) -> [(Tier, usize); 2] {
        let loaded = self.loaded.read().expect("plugin cache lock");
        Tier::ALL.map(|tier| (tier, loaded.values().filter(|l| l.prepared.tier() == tier).count()))
    }

    /// The tier of the code the plugin's version in use runs, if it is loaded.
    pub fn loaded_tier(&self, tenant: &str, plugin: &Plugin) -> Option<Tier> {
        let loaded = self.loaded.read().expect("plugin cache lock");
        loaded.get(&version_id(tenant, &plugin.name, plugin.active_version())).map(|l| l.prepared.tier())
    }

    /// Stores a new version of `name` (creating the plugin on its first upload) once it has
    /// compiled and matched the world of `kind`.
    pub async fn upload(
        &self,
        key: &TenantKey,
        owner: &Tenant,
        name: &str,
        kind: PluginKind,
        component: bytes::Bytes,
    ) -> RegistryResult<(Plugin, PluginVersion)> {
        check_name(name)?;
        let tenant = &key.tenant_id;
        if let Some(existing) = self.get(tenant, name)? {
            check_new_version(key, &existing, kind)?;
        }
        let Compiled { prepared, artifact, imports } = self.compile(Tier::Baseline, kind, component.clone()).await?;
        let config_schema = self.config_schema(owner, name, &prepared).await?;

        let _guard = self.writes.lock().await;
        let now = self.clock.now();
        let mut plugin = match self.get(tenant, name)? {
            Some(existing) => {
                // Checked again under the lock: the plugin may have changed while compiling.
                check_new_version(key, &existing, kind)?;
                existing
            }
            None => Plugin {
                name: name.to_string(),
                kind,
                enabled: true,
                pinned_version: None,
                latest_version: 0,
                limits: LimitOverrides::default(),
                created_by: key.key_id.clone(),
                created_at: now,
                updated_at: now,
            },
        };
        let version = PluginVersion {
            version: plugin.latest_version + 1,
            sha256: sha256(&component),
            size_bytes: component.len() as u64,
            imports,
            wit_version: prepared.wit_version().to_string(),
            config_schema,
            uploaded_by: key.key_id.clone(),
            uploaded_at: now,
        };
        let vkey = version_id(tenant, name, version.version);
        // The artifact goes first: a crash before the version is kept leaves only a file that
        // the next upload overwrites.
        self.write_artifact(Code { version_key: &vkey, sha256: &version.sha256 }, Tier::Baseline, artifact).await?;
        let previous_active = (plugin.latest_version > 0).then(|| plugin.active_version());
        plugin.latest_version = version.version;
        plugin.updated_at = now;
        self.store.put_plugin_version(tenant, name, &plugin, (version.version, &version), &component)?;
        self.store.flush().await?;

        if let Some(previous) = previous_active.filter(|&v| v != plugin.active_version()) {
            self.unload(|k| k == version_id(tenant, name, previous));
        }
        if plugin.active_version() == version.version {
            let loaded = Loaded { sha256: version.sha256.clone(), prepared };
            self.loaded.write().expect("plugin cache lock").insert(vkey.clone(), loaded);
            self.optimize_later(vkey);
        }
        Ok((plugin, version))
    }

    pub fn get(&self, tenant: &str, name: &str) -> RegistryResult<Option<Plugin>> {
        Ok(self.store.plugin(tenant, name)?)
    }

    /// The plugin, or a 404 naming it.
    pub fn find(&self, tenant: &str, name: &str) -> RegistryResult<Plugin> {
        self.get(tenant, name)?.ok_or_else(|| RegistryError::NotFound(format!("plugin `{name}`")))
    }

    pub fn list(&self, tenant: &str) -> RegistryResult<Vec<Plugin>> {
        Ok(self.store.plugins(tenant)?)
    }

    pub fn versions(&self, tenant: &str, name: &str) -> RegistryResult<Vec<PluginVersion>> {
        self.find(tenant, name)?;
        Ok(self.store.plugin_versions(tenant, name)?)
    }

    /// Applies a patch: enable or disable, pin a version or follow the latest, set limits.
    pub async fn patch(
        &self,
        key: &TenantKey,
        tenant: &Tenant,
        name: &str,
        patch: PluginPatch,
    ) -> RegistryResult<Plugin> {
        let _guard = self.writes.lock().await;
        let mut plugin = self.find(&tenant.id, name)?;
        check_may_change(key, Action::Update, &plugin)?;
        let previous_active = plugin.active_version();
        if let Some(enabled) = patch.enabled {
            plugin.enabled = enabled;
        }
        if let Some(pinned) = patch.pinned_version {
            if let Some(version) = pinned
                && self.store.plugin_version::<PluginVersion>(&version_id(&tenant.id, name, version))?.is_none()
            {
                return Err(invalid(
                    "pinned_version",
                    format!("plugin `{name}` has no version {version}; its latest is {}", plugin.latest_version),
                )
                .into());
            }
            plugin.pinned_version = pinned;
        }
        if let Some(limits) = patch.limits {
            tenant
                .plugin_limits
                .check_overrides(&limits)
                .map_err(|e| invalid(format!("limits.{}", field_of(&e)), e.to_string()))?;
            plugin.limits = limits;
        }
        plugin.updated_at = self.clock.now();
        self.store.put_plugin(&tenant.id, name, &plugin)?;
        self.store.flush().await?;
        if plugin.active_version() != previous_active {
            self.unload(|k| k == version_id(&tenant.id, name, previous_active));
        }
        Ok(plugin)
    }

    /// Removes a plugin with all its versions and stored key-value entries.
    pub async fn delete(&self, key: &TenantKey, name: &str) -> RegistryResult<()> {
        let _guard = self.writes.lock().await;
        let plugin = self.find(&key.tenant_id, name)?;
        check_may_change(key, Action::Delete, &plugin)?;
        self.remove(&key.tenant_id, name)?;
        self.store.flush().await?;
        Ok(())
    }

    /// Forgets what is kept beside the store for a deleted tenant's plugins: compiled
    /// artifacts, loaded instances, call slots and counters.
    pub async fn forget_tenant(&self, tenant: &str) -> RegistryResult<()> {
        let _guard = self.writes.lock().await;
        self.forget(&format!("{tenant}/"))?;
        self.calls.lock().expect("call slots lock").remove(tenant);
        Ok(())
    }

    /// Brings what this node keeps beside the store for a tenant's plugins in line with the
    /// store, after another node may have changed them: loaded code that is no longer a plugin's
    /// version in use (deleted, pinned away, or uploaded again with other code under the same
    /// number) is unloaded, artifact files of code no stored version has are removed, and the
    /// counters of deleted plugins are forgotten. Blocks: call it off the async threads.
    pub fn reconcile(&self, tenant: &str) -> RegistryResult<()> {
        let _guard = self.writes.blocking_lock();
        let mut keep = HashSet::new();
        let mut in_use = HashMap::new();
        for plugin in self.store.plugins::<Plugin>(tenant)? {
            for version in self.store.plugin_versions::<PluginVersion>(tenant, &plugin.name)? {
                let vkey = version_id(tenant, &plugin.name, version.version);
                keep.extend(
                    Tier::ALL
                        .map(|tier| self.artifacts.path(Code { version_key: &vkey, sha256: &version.sha256 }, tier)),
                );
                if version.version == plugin.active_version() {
                    in_use.insert(vkey, version.sha256);
                }
            }
        }
        let prefix = format!("{tenant}/");
        let stale: HashSet<String> = {
            let loaded = self.loaded.read().expect("plugin cache lock");
            let stale = loaded.iter().filter(|(k, l)| k.starts_with(&prefix) && in_use.get(*k) != Some(&l.sha256));
            stale.map(|(k, _)| k.clone()).collect()
        };
        for vkey in &stale {
            let plugin = plugin_of_version(vkey);
            if !in_use.keys().any(|k| k.starts_with(plugin)) {
                self.metrics.forget_plugins(plugin);
            }
        }
        self.unload(|k| stale.contains(k));
        let removed = self.artifacts.prune(tenant, &keep).map_err(artifacts_not_removed)?;
        if !stale.is_empty() || removed > 0 {
            tracing::info!(%tenant, unloaded = stale.len(), removed, "plugins changed elsewhere");
        }
        Ok(())
    }

    fn remove(&self, tenant: &str, name: &str) -> RegistryResult<()> {
        self.store.delete_plugin(tenant, name)?;
        self.forget(&plugin_id(tenant, name))
    }

    /// Forgets what is kept beside the store for the plugins whose keys start with `prefix`.
    fn forget(&self, prefix: &str) -> RegistryResult<()> {
        self.remove_artifacts(prefix)?;
        self.logs.forget(prefix);
        self.metrics.forget_plugins(prefix);
        self.unload(|k| k.starts_with(prefix));
        Ok(())
    }

    /// Drops the loaded versions whose keys match, with their warm instances.
    fn unload(&self, matches: impl Fn(&str) -> bool) {
        let mut loaded = self.loaded.write().expect("plugin cache lock");
        let gone: Vec<String> = loaded.keys().filter(|k| matches(k)).cloned().collect();
        for gone in gone.iter().filter_map(|k| loaded.remove(k)) {
            self.engine.forget(&gone.prepared);
        }
    }

    /// The lines the plugin logged in its calls, newest first.
    pub fn logs(&self, tenant: &str, name: &str, query: &LogQuery) -> RegistryResult<Vec<KeptLine>> {
        self.find(tenant, name)?;
        self.logs.read(&plugin_id(tenant, name), query)
    }

    /// Runs a condition's `validate` on a config.
    pub async fn validate(
        &self,
        tenant: &Tenant,
        plugin: &Plugin,
        config: &serde_json::Value,
    ) -> RegistryResult<CallReport<()>> {
        let wanted = if plugin.kind == PluginKind::Channel { PluginKind::Channel } else { PluginKind::Condition };
        let pre = self.prepared_as(tenant, plugin, wanted).await?;
        let (engine, env, config) = (self.engine.clone(), self.env(tenant, plugin, "*"), config.to_string());
        self.run(tenant, plugin, "validate", move || engine.validate(&pre, env, &config)).await
    }

    /// Runs a condition's `evaluate`.
    pub async fn evaluate(
        &self,
        tenant: &Tenant,
        plugin: &Plugin,
        input: &Evaluation,
    ) -> RegistryResult<CallReport<Verdict>> {
        let pre = self.prepared_as(tenant, plugin, PluginKind::Condition).await?;
        let (engine, env, input) = (self.engine.clone(), self.env(tenant, plugin, &input.scope_key()), input.clone());
        self.run(tenant, plugin, "evaluate", move || engine.evaluate(&pre, env, &input)).await
    }

    /// Runs a template's `render`.
    pub async fn render(
        &self,
        tenant: &Tenant,
        plugin: &Plugin,
        context: &Context,
    ) -> RegistryResult<CallReport<Payload>> {
        let pre = self.prepared_as(tenant, plugin, PluginKind::Template).await?;
        let scope = context.customer.as_ref().map_or("*", |c| c.id.as_str());
        let (engine, env, context) = (self.engine.clone(), self.env(tenant, plugin, scope), context.clone());
        self.run(tenant, plugin, "render", move || engine.render(&pre, env, &context)).await
    }

    /// Runs a channel's `requests`: what delivers this notification under the channel's config.
    pub async fn requests(
        &self,
        tenant: &Tenant,
        plugin: &Plugin,
        context: &Context,
        config: &serde_json::Value,
        secrets: &[String],
    ) -> RegistryResult<CallReport<Vec<HttpRequest>>> {
        let pre = self.prepared_as(tenant, plugin, PluginKind::Channel).await?;
        let scope = context.customer.as_ref().map_or("*", |c| c.id.as_str());
        let (engine, env) = (self.engine.clone(), self.env(tenant, plugin, scope));
        let (context, config) = (context.clone(), config.to_string());
        self.run_redacting(tenant, plugin, "requests", secrets, move || engine.requests(&pre, env, &context, &config))
            .await
    }

    /// Runs a channel's `classify` on the answer to its request `index`.
    pub async fn classify(
        &self,
        tenant: &Tenant,
        plugin: &Plugin,
        index: u32,
        response: &HttpResponse,
        config: &serde_json::Value,
        secrets: &[String],
    ) -> RegistryResult<CallReport<DeliveryOutcome>> {
        let pre = self.prepared_as(tenant, plugin, PluginKind::Channel).await?;
        let (engine, env) = (self.engine.clone(), self.env(tenant, plugin, "*"));
        let (response, config) = (response.clone(), config.to_string());
        let call = move || engine.classify(&pre, env, index, &response, &config);
        self.run_redacting(tenant, plugin, "classify", secrets, call).await
    }

    /// Reads a new condition's config schema under the tenant's limits; a schema that is not
    /// JSON, or a call that fails, refuses the upload.
    async fn config_schema(&self, tenant: &Tenant, name: &str, prepared: &Prepared) -> RegistryResult<Option<Value>> {
        let (engine, prepared) = (self.engine.clone(), prepared.clone());
        let env = self.env_for(tenant.plugin_limits, &tenant.id, name, "*");
        let report = tokio::task::spawn_blocking(move || engine.config_schema(&prepared, env))
            .await
            .map_err(|e| PluginError::Host(format!("plugin call did not finish: {e}")))?;
        let Some(report) = report else { return Ok(None) };
        let text = report.result.map_err(|e| PluginError::Invalid(format!("its config-schema failed: {e}")))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| PluginError::Invalid(format!("its config-schema is not JSON: {e}")).into())
    }

    /// The loaded plugin, when it is of the `wanted` kind.
    async fn prepared_as(&self, tenant: &Tenant, plugin: &Plugin, wanted: PluginKind) -> RegistryResult<Prepared> {
        if plugin.kind != wanted {
            return Err(RegistryError::Conflict(format!(
                "plugin `{}` is a {:?} plugin, not a {wanted:?} plugin",
                plugin.name, plugin.kind
            )));
        }
        self.prepared(&tenant.id, plugin).await
    }

    fn env(&self, tenant: &Tenant, plugin: &Plugin, scope_key: &str) -> CallEnv {
        self.env_for(tenant.plugin_limits.clamped_by(&plugin.limits), &tenant.id, &plugin.name, scope_key)
    }

    /// A call's environment: `limits`, and the key-value scope of (tenant, plugin, scope key).
    fn env_for(&self, limits: PluginLimits, tenant: &str, name: &str, scope_key: &str) -> CallEnv {
        CallEnv { limits, kv: self.store.plugin_kv(tenant, name, scope_key), clock: self.clock.clone() }
    }

    /// Runs a call on a blocking thread once the tenant has a free slot, counts it, and keeps
    /// its log lines.
    async fn run<T: Send + 'static>(
        &self,
        tenant: &Tenant,
        plugin: &Plugin,
        function: &'static str,
        call: impl FnOnce() -> CallReport<T> + Send + 'static,
    ) -> RegistryResult<CallReport<T>> {
        self.run_redacting(tenant, plugin, function, &[], call).await
    }

    /// `run`, with each of `secrets` replaced in the lines the call logged (as kept and as
    /// answered) and in its error as kept.
    async fn run_redacting<T: Send + 'static>(
        &self,
        tenant: &Tenant,
        plugin: &Plugin,
        function: &'static str,
        secrets: &[String],
        call: impl FnOnce() -> CallReport<T> + Send + 'static,
    ) -> RegistryResult<CallReport<T>> {
        let redact =
            |text: &str| secrets.iter().fold(text.to_string(), |text, s| text.replace(s.as_str(), "[redacted]"));
        if let Some(per_second) = tenant.limits.plugin_calls_per_second.or(self.calls_per_second) {
            let rate = Rate { per_second, burst: per_second.max(1.0) };
            self.rates
                .try_take(tenant.id.clone(), 1.0, rate)
                .map_err(|retry_after| PluginError::RateLimited { per_second, retry_after })?;
        }
        let slots = self
            .calls
            .lock()
            .expect("call slots lock")
            .entry(tenant.id.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.cores)))
            .clone();
        let _slot = slots.acquire_owned().await.expect("semaphore is never closed");
        let mut report = tokio::task::spawn_blocking(call)
            .await
            .map_err(|e| PluginError::Host(format!("plugin call did not finish: {e}")))?;
        for line in &mut report.logs {
            line.message = redact(&line.message);
        }
        let key = plugin_id(&tenant.id, &plugin.name);
        self.metrics.plugin_call(
            PluginRef { key: &key, tenant: &tenant.id, name: &plugin.name },
            PluginCall {
                function,
                outcome: report.result.as_ref().map_or_else(PluginError::code, |_| "ok"),
                warm: report.warm,
                micros: report.duration_us,
                fuel: report.fuel_used,
            },
        );
        let error = report.result.as_ref().err().map(|e| redact(&format!("{}: {e}", e.code())));
        if !report.logs.is_empty() || error.is_some() {
            let lines = logs::of_call(&report.logs, error, function, plugin.active_version(), self.clock.now());
            self.logs.keep(&key, lines)?;
        }
        Ok(report)
    }

    /// The plugin's version in use, loaded: from the cache, else from its stored artifact
    /// (optimized, else baseline), else compiled again from the stored component (when the
    /// artifact came from another build). Baseline code is queued for optimizing.
    async fn prepared(&self, tenant: &str, plugin: &Plugin) -> RegistryResult<Prepared> {
        let vkey = version_id(tenant, &plugin.name, plugin.active_version());
        if let Some(loaded) = self.loaded.read().expect("plugin cache lock").get(&vkey) {
            return Ok(loaded.prepared.clone());
        }
        let version = self
            .store
            .plugin_version::<PluginVersion>(&vkey)?
            .ok_or_else(|| PluginError::Host(format!("stored version {vkey} is missing")))?;
        let (engine, kind, artifacts) = (self.engine.clone(), plugin.kind, self.artifacts.clone());
        let (key, sha256) = (vkey.clone(), version.sha256.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let code = Code { version_key: &key, sha256: &sha256 };
            [Tier::Optimized, Tier::Baseline]
                .into_iter()
                .find_map(|tier| engine.load(tier, kind, &artifacts.path(code, tier)))
        })
        .await
        .map_err(|e| PluginError::Host(e.to_string()))?;
        let prepared = match loaded {
            Some(prepared) => prepared,
            None => self.recompile(Code { version_key: &vkey, sha256: &version.sha256 }, plugin.kind).await?,
        };
        let loaded = Loaded { sha256: version.sha256, prepared: prepared.clone() };
        self.loaded.write().expect("plugin cache lock").insert(vkey.clone(), loaded);
        if prepared.tier() == Tier::Baseline {
            self.optimize_later(vkey);
        }
        Ok(prepared)
    }

    /// Compiles on a blocking thread, at most one compilation per core at a time.
    async fn compile(&self, tier: Tier, kind: PluginKind, component: bytes::Bytes) -> RegistryResult<Compiled> {
        let _permit = self.compiles.acquire().await.expect("semaphore is never closed");
        let engine = self.engine.clone();
        let compiled = tokio::task::spawn_blocking(move || engine.compile(tier, kind, &component))
            .await
            .map_err(|e| PluginError::Host(e.to_string()))??;
        self.metrics.plugin_compiled(tier.as_str());
        Ok(compiled)
    }

    async fn recompile(&self, code: Code<'_>, kind: PluginKind) -> RegistryResult<Prepared> {
        let vkey = code.version_key;
        let component = self
            .store
            .plugin_component(vkey)?
            .ok_or_else(|| PluginError::Host(format!("stored component {vkey} is missing")))?;
        let compiled = self.compile(Tier::Baseline, kind, bytes::Bytes::from(component)).await?;
        tracing::info!(version = vkey, "compiled a plugin that had no artifact here this build can load");
        self.write_artifact(code, Tier::Baseline, compiled.artifact).await?;
        Ok(compiled.prepared)
    }

    /// Queues a loaded version for optimizing, unless it is already queued.
    fn optimize_later(&self, vkey: String) {
        if self.optimizing.lock().expect("optimizing lock").insert(vkey.clone()) {
            // The optimizer ends only with the registry, so the queue is open.
            let _ = self.optimizer.lock().expect("optimizer lock").send(vkey);
        }
    }

    /// Compiles a version at the optimized tier, keeps its artifact in place of the baseline
    /// one, and swaps it in if the version is still loaded. The version is checked again once
    /// compiled, under the write lock: if it was removed meanwhile, the work is dropped; if it was
    /// removed and uploaded again with other code under the same number, that code is compiled.
    fn optimize(&self, vkey: &str) -> RegistryResult<()> {
        let started = Instant::now();
        loop {
            let attempt = self.compile_optimized(vkey)?;
            let _guard = self.writes.blocking_lock();
            let current = self.store.plugin_version::<PluginVersion>(vkey)?;
            match (attempt, current) {
                (Some((sha256, compiled)), Some(current)) if current.sha256 == sha256 => {
                    let code = Code { version_key: vkey, sha256: &sha256 };
                    self.artifacts
                        .write(code, Tier::Optimized, &compiled.artifact)
                        .and_then(|()| self.artifacts.remove_file(code, Tier::Baseline))
                        .map_err(artifact_not_written)?;
                    let mut loaded = self.loaded.write().expect("plugin cache lock");
                    if let Some(baseline) =
                        loaded.get_mut(vkey).filter(|l| l.prepared.tier() == Tier::Baseline && l.sha256 == sha256)
                    {
                        self.engine.forget(&std::mem::replace(&mut baseline.prepared, compiled.prepared));
                    }
                    let elapsed_ms = started.elapsed().as_millis() as u64;
                    tracing::info!(version = vkey, elapsed_ms, "plugin optimized");
                }
                (_, None) => {}
                _ => continue,
            }
            // Under the write lock, so an upload of the same version key after this queues anew.
            self.optimizing.lock().expect("optimizing lock").remove(vkey);
            return Ok(());
        }
    }

    /// A version's code compiled at the optimized tier, with the hash of the component it came
    /// from; `None` when the version is gone.
    fn compile_optimized(&self, vkey: &str) -> RegistryResult<Option<(String, Compiled)>> {
        let Some(plugin) = self.store.plugin_by_id::<Plugin>(plugin_of_version(vkey))? else { return Ok(None) };
        let Some(component) = self.store.plugin_component(vkey)? else {
            return Ok(None);
        };
        let compiled = self.engine.compile(Tier::Optimized, plugin.kind, &component)?;
        self.metrics.plugin_compiled(Tier::Optimized.as_str());
        Ok(Some((sha256(&component), compiled)))
    }

    fn remove_artifacts(&self, folder_key: &str) -> RegistryResult<()> {
        self.artifacts.remove(folder_key).map_err(|e| artifacts_not_removed(e).into())
    }

    /// Writes a compiled artifact's file, durably, on a blocking thread.
    async fn write_artifact(&self, code: Code<'_>, tier: Tier, artifact: Vec<u8>) -> RegistryResult<()> {
        let (artifacts, vkey, sha256) = (self.artifacts.clone(), code.version_key.to_string(), code.sha256.to_string());
        tokio::task::spawn_blocking(move || {
            artifacts.write(Code { version_key: &vkey, sha256: &sha256 }, tier, &artifact)
        })
        .await
        .map_err(|e| PluginError::Host(e.to_string()))?
        .map_err(artifact_not_written)?;
        Ok(())
    }
}

/// The optimizer thread: optimizes the queued versions one at a time (so the compilations of
/// uploads keep the other cores), until the registry is gone. A version that fails to optimize
/// keeps its baseline code.
fn optimize_all(registry: &Weak<Plugins>, jobs: &mpsc::Receiver<String>) {
    for vkey in jobs {
        let Some(plugins) = registry.upgrade() else { return };
        if let Err(error) = plugins.optimize(&vkey) {
            tracing::warn!(version = vkey, %error, "cannot optimize a plugin; it keeps its baseline code");
            plugins.optimizing.lock().expect("optimizing lock").remove(&vkey);
        }
    }
}

fn artifact_not_written(error: std::io::Error) -> PluginError {
    PluginError::Host(format!("writing the compiled artifact: {error}"))
}

fn artifacts_not_removed(error: std::io::Error) -> PluginError {
    PluginError::Host(format!("removing artifacts: {error}"))
}

/// A component's SHA-256, as versions show it.
fn sha256(component: &[u8]) -> String {
    hex(&Sha256::digest(component))
}

/// Whether `key` may upload a new version of `existing` as a `kind` plugin.
fn check_new_version(key: &TenantKey, existing: &Plugin, kind: PluginKind) -> RegistryResult<()> {
    check_may_change(key, Action::Update, existing)?;
    if existing.kind != kind {
        return Err(RegistryError::Conflict(format!(
            "plugin `{}` is a {:?} plugin; upload a new version of the same kind or use another name",
            existing.name, existing.kind
        )));
    }
    Ok(())
}

fn check_may_change(key: &TenantKey, action: Action, plugin: &Plugin) -> RegistryResult<()> {
    Ok(key.check_may(Resource::Plugins, action, &plugin.created_by, &format!("plugin `{}`", plugin.name))?)
}

/// The field name a limits error starts with (`"fuel: ..."` -> `fuel`).
fn field_of(error: &str) -> &str {
    error.split(':').next().unwrap_or(error)
}
