//! The one door to wasmtime: the shared `Engine` (a compiler per tier, each with the linker of
//! every world), compiling and loading components, and running a call under its limits, in a
//! fresh `Store` or in the warm one kept for the same plugin version and scope (see `warm`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, Trap};

use super::bindings::{SUPPORTED, v0_1, v0_2, v0_3};
use super::compile_cache::CompileCache;
use super::io::WireSize;
use super::sandbox::{HostState, LogLine, MemoryLimitHit};
use super::warm::{Instance, Warm, WarmKey, WarmPool};
use super::{PluginError, PluginKind, io};
use crate::clock::SharedClock;
use crate::context::Context;
use crate::store::KvScope;
use crate::tenants::PluginLimits;

/// Bytes of each memory and table slot reset with `memset` instead of `madvise` when a call ends.
const KEEP_RESIDENT: usize = 64 * 1024;

/// How often the epoch advances; wall-time limits are counted in these ticks, so a call runs at
/// least its `time_ms` and at most two ticks more. A 1 ms tick woke the ticker thread often enough
/// to double the p99 of every call; at 10 ms it no longer shows.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How a component's code is compiled. A new component is compiled at the baseline tier
/// (Winch: one quick pass, about six times faster to compile than Cranelift on an 18 MB Python
/// component), so its upload is answered quickly; it is then compiled again at the optimized
/// tier (Cranelift) in the background and swapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Baseline,
    Optimized,
}

impl Tier {
    pub const ALL: [Tier; 2] = [Tier::Baseline, Tier::Optimized];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Baseline => "baseline",
            Tier::Optimized => "optimized",
        }
    }
}

/// A component checked against its world and ready to instantiate. Cheap to clone; clones share
/// the id that warm instances are kept under.
#[derive(Clone)]
pub struct Prepared {
    id: u64,
    tier: Tier,
    pre: Pre,
}

/// An instance factory for one world of one WIT version.
#[derive(Clone)]
enum Pre {
    ConditionV0_1(v0_1::condition::ConditionPre<HostState>),
    TemplateV0_1(v0_1::template::TemplatePre<HostState>),
    ConditionV0_2(v0_2::condition::ConditionPre<HostState>),
    TemplateV0_2(v0_2::template::TemplatePre<HostState>),
    ConditionV0_3(v0_3::condition::ConditionPre<HostState>),
    TemplateV0_3(v0_3::template::TemplatePre<HostState>),
    ChannelV0_3(v0_3::channel::ChannelPre<HostState>),
}

/// A freshly compiled component: the instance factory, the artifact to store, and what it
/// imports.
pub struct Compiled {
    pub prepared: Prepared,
    pub artifact: Vec<u8>,
    pub imports: Vec<String>,
}

/// What a call runs with: its limits, its key-value scope and the clock.
pub struct CallEnv {
    pub limits: PluginLimits,
    pub kv: KvScope,
    pub clock: SharedClock,
}

/// What one call did, whether or not it succeeded.
#[derive(Debug)]
pub struct CallReport<T> {
    pub result: Result<T, PluginError>,
    pub fuel_used: u64,
    pub duration_us: u64,
    /// Whether an instance kept warm from an earlier call served this one.
    pub warm: bool,
    pub logs: Vec<LogLine>,
}

impl<T> CallReport<T> {
    /// The same report with its output converted.
    pub fn map_output<U>(self, f: impl FnOnce(T) -> U) -> CallReport<U> {
        CallReport {
            result: self.result.map(f),
            fuel_used: self.fuel_used,
            duration_us: self.duration_us,
            warm: self.warm,
            logs: self.logs,
        }
    }
}

/// What every tenant shares: a wasmtime engine per tier, the warm instances, and the epoch
/// ticker that enforces wall time.
pub struct Engine {
    baseline: Compiler,
    optimized: Compiler,
    ticker_stop: Arc<AtomicBool>,
    warm: WarmPool,
    prepared_ids: AtomicU64,
}

/// A wasmtime engine (code compiled by one engine runs only in its stores) and its linker.
struct Compiler {
    engine: wasmtime::Engine,
    linker: Linker<HostState>,
}

impl Engine {
    /// An engine whose optimizing compiler keeps each function it compiles in `compile_cache`, so
    /// a component that shares code with one compiled before (every Python plugin carries the
    /// same interpreter) compiles only what is new, and whose warm instances hold at most
    /// `warm_bytes` of linear memory together.
    pub fn new(compile_cache: Arc<CompileCache>, warm_bytes: u64) -> wasmtime::Result<Self> {
        let mut baseline = config();
        baseline.strategy(wasmtime::Strategy::Winch);
        // The optimizing compiler runs in the background, on one thread: on both cores it made
        // the Python uploads it overlapped take 4.2 s at p50 instead of 2.2 s.
        let mut optimized = config();
        optimized
            .strategy(wasmtime::Strategy::Cranelift)
            .parallel_compilation(false)
            .enable_incremental_compilation(compile_cache)?;
        let (baseline, optimized) = (Compiler::new(&baseline)?, Compiler::new(&optimized)?);

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let engines = [baseline.engine.weak(), optimized.engine.weak()];
        let stop = ticker_stop.clone();
        std::thread::Builder::new().name("klaxon-epoch".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                for weak in &engines {
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            }
        })?;

        Ok(Engine {
            baseline,
            optimized,
            ticker_stop,
            warm: WarmPool::new(warm_bytes),
            prepared_ids: AtomicU64::new(0),
        })
    }

    fn compiler(&self, tier: Tier) -> &Compiler {
        match tier {
            Tier::Baseline => &self.baseline,
            Tier::Optimized => &self.optimized,
        }
    }

    /// Compiles a component at `tier` and checks it against the world of `kind`.
    pub fn compile(&self, tier: Tier, kind: PluginKind, bytes: &[u8]) -> Result<Compiled, PluginError> {
        check_component_header(bytes)?;
        let engine = &self.compiler(tier).engine;
        let component = Component::new(engine, bytes).map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
        let imports = component.component_type().imports(engine).map(|(name, _)| name.to_string()).collect();
        let prepared = self.prepare(tier, kind, &component)?;
        let artifact = component.serialize().map_err(|e| PluginError::Host(format!("{e:#}")))?;
        Ok(Compiled { prepared, artifact, imports })
    }

    /// Loads an artifact file `compile` produced at `tier`, mapping it. `None` when there is none
    /// or this build of wasmtime cannot use it (it was made by another version): the caller
    /// compiles the component again.
    pub fn load(&self, tier: Tier, kind: PluginKind, artifact: &Path) -> Option<Prepared> {
        wasmtime::Engine::detect_precompiled_file(artifact).ok()??;
        // SAFETY: artifact files come only from `Component::serialize` in `compile` and are kept
        // in the server's own data folder, which nothing else writes while it runs (a new
        // artifact replaces the file by rename, leaving a mapped one intact); nothing a tenant
        // uploads is ever deserialized. An artifact of the other tier is refused by wasmtime's
        // check of the engine's settings.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize_file(&self.compiler(tier).engine, artifact) }.ok()?;
        self.prepare(tier, kind, &component).ok()
    }

    /// Checks a component against the world of `kind` in the WIT version it was built against
    /// (the version of the `klaxon:plugin` interfaces it imports).
    fn prepare(&self, tier: Tier, kind: PluginKind, component: &Component) -> Result<Prepared, PluginError> {
        let Compiler { engine, linker } = self.compiler(tier);
        let version = wit_version(engine, component)?;
        let mismatch =
            |e: wasmtime::Error| PluginError::WorldMismatch { world: kind.world(version), detail: format!("{e:#}") };
        let pre = linker.instantiate_pre(component).map_err(mismatch)?;
        let pre = match (kind, version) {
            (PluginKind::Condition, v0_1::VERSION) => {
                Pre::ConditionV0_1(v0_1::condition::ConditionPre::new(pre).map_err(mismatch)?)
            }
            (PluginKind::Template, v0_1::VERSION) => {
                Pre::TemplateV0_1(v0_1::template::TemplatePre::new(pre).map_err(mismatch)?)
            }
            (PluginKind::Condition, v0_2::VERSION) => {
                Pre::ConditionV0_2(v0_2::condition::ConditionPre::new(pre).map_err(mismatch)?)
            }
            (PluginKind::Template, v0_2::VERSION) => {
                Pre::TemplateV0_2(v0_2::template::TemplatePre::new(pre).map_err(mismatch)?)
            }
            (PluginKind::Channel, v0_1::VERSION | v0_2::VERSION) => {
                return Err(PluginError::WorldMismatch {
                    world: kind.world(version),
                    detail: format!("the channel world came in klaxon:plugin@{}: build against it", v0_3::VERSION),
                });
            }
            (PluginKind::Condition, _) => {
                Pre::ConditionV0_3(v0_3::condition::ConditionPre::new(pre).map_err(mismatch)?)
            }
            (PluginKind::Template, _) => Pre::TemplateV0_3(v0_3::template::TemplatePre::new(pre).map_err(mismatch)?),
            (PluginKind::Channel, _) => Pre::ChannelV0_3(v0_3::channel::ChannelPre::new(pre).map_err(mismatch)?),
        };
        Ok(Prepared { id: self.prepared_ids.fetch_add(1, Ordering::Relaxed), tier, pre })
    }

    /// Drops the warm instances of a version that is no longer in use.
    pub fn forget(&self, prepared: &Prepared) {
        self.warm.forget(prepared.id);
    }

    /// Calls a condition's or a channel's `config-schema` (0.2.0 and later): the JSON Schema of
    /// its config. `None` for a template, or a condition built against 0.1.0, which has none.
    pub fn config_schema(&self, prepared: &Prepared, env: CallEnv) -> Option<CallReport<String>> {
        matches!(prepared.pre, Pre::ConditionV0_2(_) | Pre::ConditionV0_3(_) | Pre::ChannelV0_3(_)).then(|| {
            self.run(prepared, env, 0, |store, instance| match instance {
                Instance::ConditionV0_2(condition) => condition.call_config_schema(store).map(Ok),
                Instance::ConditionV0_3(condition) => condition.call_config_schema(store).map(Ok),
                Instance::ChannelV0_3(channel) => channel.call_config_schema(store).map(Ok),
                _ => Err(wasmtime::format_err!("no config-schema before 0.2.0, nor in a template")),
            })
        })
    }

    /// Calls a condition's `validate` on a rule's config, or a channel's on a channel's (JSON
    /// text).
    pub fn validate(&self, prepared: &Prepared, env: CallEnv, config: &str) -> CallReport<()> {
        if matches!(prepared.pre, Pre::TemplateV0_1(_) | Pre::TemplateV0_2(_) | Pre::TemplateV0_3(_)) {
            return wrong_world(PluginKind::Condition);
        }
        self.run(prepared, env, config.len() as u64, |store, instance| match instance {
            Instance::ConditionV0_1(condition) => condition.call_validate(store, config),
            Instance::ConditionV0_2(condition) => condition.call_validate(store, config),
            Instance::ConditionV0_3(condition) => condition.call_validate(store, config),
            Instance::ChannelV0_3(channel) => channel.call_validate(store, config),
            _ => Err(wasmtime::format_err!("a template has no validate")),
        })
    }

    /// Calls a condition's `evaluate`, with the input in the records of its version.
    pub fn evaluate(&self, prepared: &Prepared, env: CallEnv, input: &io::Evaluation) -> CallReport<io::Verdict> {
        match prepared.pre {
            Pre::ConditionV0_1(_) => {
                let input = v0_1::types::Evaluation::from(input);
                self.run(prepared, env, input.wire_size(), |store, instance| match instance {
                    Instance::ConditionV0_1(condition) => condition.call_evaluate(store, &input),
                    _ => Err(wasmtime::format_err!("not a 0.1.0 condition")),
                })
                .map_output(Into::into)
            }
            Pre::ConditionV0_2(_) => {
                let input = v0_2::types::Evaluation::from(input);
                self.run(prepared, env, input.wire_size(), |store, instance| match instance {
                    Instance::ConditionV0_2(condition) => condition.call_evaluate(store, &input),
                    _ => Err(wasmtime::format_err!("not a 0.2.0 condition")),
                })
                .map_output(Into::into)
            }
            Pre::ConditionV0_3(_) => {
                let input = v0_3::types::Evaluation::from(input);
                self.run(prepared, env, input.wire_size(), |store, instance| match instance {
                    Instance::ConditionV0_3(condition) => condition.call_evaluate(store, &input),
                    _ => Err(wasmtime::format_err!("not a 0.3.0 condition")),
                })
                .map_output(Into::into)
            }
            _ => wrong_world(PluginKind::Condition),
        }
    }

    /// Calls a template's `render`, with the context in the records of its version.
    pub fn render(&self, prepared: &Prepared, env: CallEnv, context: &Context) -> CallReport<io::Payload> {
        match prepared.pre {
            Pre::TemplateV0_1(_) => {
                let context = v0_1::types::Context::from(context);
                self.run(prepared, env, context.wire_size(), |store, instance| match instance {
                    Instance::TemplateV0_1(template) => template.call_render(store, &context),
                    _ => Err(wasmtime::format_err!("not a 0.1.0 template")),
                })
                .map_output(Into::into)
            }
            Pre::TemplateV0_2(_) => {
                let context = v0_2::types::Context::from(context);
                self.run(prepared, env, context.wire_size(), |store, instance| match instance {
                    Instance::TemplateV0_2(template) => template.call_render(store, &context),
                    _ => Err(wasmtime::format_err!("not a 0.2.0 template")),
                })
                .map_output(Into::into)
            }
            Pre::TemplateV0_3(_) => {
                let context = v0_3::types::Context::from(context);
                self.run(prepared, env, context.wire_size(), |store, instance| match instance {
                    Instance::TemplateV0_3(template) => template.call_render(store, &context),
                    _ => Err(wasmtime::format_err!("not a 0.3.0 template")),
                })
                .map_output(Into::into)
            }
            _ => wrong_world(PluginKind::Template),
        }
    }

    /// Calls a channel's `requests`: what to send for this notification, with the channel's
    /// config.
    pub fn requests(
        &self,
        prepared: &Prepared,
        env: CallEnv,
        context: &Context,
        config: &str,
    ) -> CallReport<Vec<io::HttpRequest>> {
        let Pre::ChannelV0_3(_) = prepared.pre else { return wrong_world(PluginKind::Channel) };
        let context = v0_3::types::Context::from(context);
        self.run(prepared, env, context.wire_size() + config.len() as u64, |store, instance| match instance {
            Instance::ChannelV0_3(channel) => channel.call_requests(store, &context, config),
            _ => Err(wasmtime::format_err!("not a channel")),
        })
        .map_output(|requests| requests.into_iter().map(Into::into).collect())
    }

    /// Calls a channel's `classify`: what the answer to its request `index` means.
    pub fn classify(
        &self,
        prepared: &Prepared,
        env: CallEnv,
        index: u32,
        response: &io::HttpResponse,
        config: &str,
    ) -> CallReport<io::DeliveryOutcome> {
        let Pre::ChannelV0_3(_) = prepared.pre else { return wrong_world(PluginKind::Channel) };
        let response = v0_3::types::HttpResponse::from(response);
        self.run(prepared, env, response.wire_size() + config.len() as u64, |store, instance| match instance {
            Instance::ChannelV0_3(channel) => channel.call_classify(store, index, &response, config).map(Ok),
            _ => Err(wasmtime::format_err!("not a channel")),
        })
        .map_output(Into::into)
    }

    /// Runs `call` under the call's limits, in the warm instance kept for the same version and
    /// scope or else in a fresh one, and keeps the instance warm when the call ended cleanly.
    /// The input's size is checked before anything runs, the output's after.
    fn run<T: WireSize>(
        &self,
        prepared: &Prepared,
        env: CallEnv,
        input_size: u64,
        call: impl FnOnce(&mut Store<HostState>, &Instance) -> wasmtime::Result<Result<T, String>>,
    ) -> CallReport<T> {
        let CallEnv { limits, kv, clock } = env;
        if input_size > limits.input_bytes {
            return CallReport {
                result: Err(PluginError::InputTooLarge { size: input_size, limit: limits.input_bytes }),
                fuel_used: 0,
                duration_us: 0,
                warm: false,
                logs: Vec::new(),
            };
        }
        let started = Instant::now();
        let key = WarmKey { prepared: prepared.id, scope: kv.id().to_vec(), limits };
        let (mut store, kept) = match self.warm.take(&key) {
            Some(warm) => (warm.store, Some(warm.instance)),
            None => {
                let engine = &self.compiler(prepared.tier).engine;
                let mut store = Store::new(engine, HostState::new(limits.memory_bytes, kv, clock));
                store.limiter(|state| state);
                (store, None)
            }
        };
        let warm = kept.is_some();
        // The next tick may come at once: one tick more than the limit holds is never too few.
        store.set_epoch_deadline(limits.time_ms.div_ceil(EPOCH_TICK.as_millis() as u64) + 1);
        let outcome = store.set_fuel(limits.fuel).and_then(|()| {
            let instance = match kept {
                Some(instance) => instance,
                None => prepared.instantiate(&mut store)?,
            };
            let output = call(&mut store, &instance)?;
            Ok((instance, output))
        });
        let duration_us = started.elapsed().as_micros() as u64;
        let fuel_used = limits.fuel - store.get_fuel().unwrap_or(0);
        let logs = store.data_mut().take_logs();
        let outcome = match outcome {
            Ok((instance, output)) => {
                if store.data().reusable() {
                    self.warm.put(Warm { key, store, instance });
                }
                Ok(output)
            }
            Err(error) => Err(error),
        };
        let limits = &limits;
        let result = match outcome {
            Ok(Ok(output)) => match output.wire_size() {
                size if size > limits.output_bytes => {
                    Err(PluginError::OutputTooLarge { size, limit: limits.output_bytes })
                }
                _ => Ok(output),
            },
            Ok(Err(message)) if message.len() as u64 > limits.output_bytes => {
                Err(PluginError::OutputTooLarge { size: message.len() as u64, limit: limits.output_bytes })
            }
            Ok(Err(message)) => Err(PluginError::Failed(message)),
            Err(error) => Err(classify(error, limits)),
        };
        CallReport { result, fuel_used, duration_us, warm, logs }
    }
}

impl Prepared {
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The WIT version the component was built against.
    pub fn wit_version(&self) -> &'static str {
        match self.pre {
            Pre::ConditionV0_1(_) | Pre::TemplateV0_1(_) => v0_1::VERSION,
            Pre::ConditionV0_2(_) | Pre::TemplateV0_2(_) => v0_2::VERSION,
            Pre::ConditionV0_3(_) | Pre::TemplateV0_3(_) | Pre::ChannelV0_3(_) => v0_3::VERSION,
        }
    }

    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Instance> {
        Ok(match &self.pre {
            Pre::ConditionV0_1(pre) => Instance::ConditionV0_1(pre.instantiate(store)?),
            Pre::TemplateV0_1(pre) => Instance::TemplateV0_1(pre.instantiate(store)?),
            Pre::ConditionV0_2(pre) => Instance::ConditionV0_2(pre.instantiate(store)?),
            Pre::TemplateV0_2(pre) => Instance::TemplateV0_2(pre.instantiate(store)?),
            Pre::ConditionV0_3(pre) => Instance::ConditionV0_3(pre.instantiate(store)?),
            Pre::TemplateV0_3(pre) => Instance::TemplateV0_3(pre.instantiate(store)?),
            Pre::ChannelV0_3(pre) => Instance::ChannelV0_3(pre.instantiate(store)?),
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The report of a call made to a plugin of the other world. The registry checks kinds before
/// calling, so this answers a bug, not a tenant's mistake.
fn wrong_world<T>(wanted: PluginKind) -> CallReport<T> {
    CallReport {
        result: Err(PluginError::Host(format!("not a {wanted:?} plugin"))),
        fuel_used: 0,
        duration_us: 0,
        warm: false,
        logs: Vec::new(),
    }
}

/// The settings both tiers share: fuel, epochs, the component model, and pooled instances.
fn config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    // Instances come from pre-reserved slots instead of fresh mappings: a fresh `Store` per call
    // stays cheap. The pool's defaults (1000 instances and memories) stay above the number of
    // calls that can run at once (tokio's blocking threads).
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        // Only the pages a call dirtied are reset, and they stay mapped: no page faults on the
        // next call (Linux 6.7 and later; elsewhere slots are reset as before).
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    config
}

impl Compiler {
    /// An engine of `config`, and the one linker every world of every version instantiates with
    /// there: the host interface of each supported WIT version and a deny-by-default WASI.
    fn new(config: &wasmtime::Config) -> wasmtime::Result<Self> {
        let engine = wasmtime::Engine::new(config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        v0_1::host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        v0_2::host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        v0_3::host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        Ok(Compiler { engine, linker })
    }
}

/// The version of the `klaxon:plugin` interfaces a component imports (every component imports
/// at least the types its exports use).
fn wit_version(engine: &wasmtime::Engine, component: &Component) -> Result<&'static str, PluginError> {
    let imported: Vec<String> = component
        .component_type()
        .imports(engine)
        .filter_map(|(name, _)| {
            name.strip_prefix("klaxon:plugin/").and_then(|n| n.split_once('@')).map(|(_, v)| v.to_string())
        })
        .collect();
    if let Some(version) = SUPPORTED.into_iter().find(|v| imported.iter().any(|i| i == v)) {
        return Ok(version);
    }
    Err(PluginError::Invalid(match imported.first() {
        Some(other) => format!(
            "the component was built against klaxon:plugin@{other}; this server runs plugins built against {}",
            SUPPORTED.join(" or ")
        ),
        None => "the component imports no klaxon:plugin interface: build it against the WIT package in `wit/`".into(),
    }))
}

/// Tells a core module or a stray file from a component before compiling, for a clearer error.
fn check_component_header(bytes: &[u8]) -> Result<(), PluginError> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00]) => Err(PluginError::NotAComponent(
            "this is a core WebAssembly module; build a component (for example with \
             `klaxon plugins build`, or `wasm-tools component new`)"
                .into(),
        )),
        Some([0, b'a', b's', b'm', _, _, 0x01, 0x00]) => Ok(()),
        _ => Err(PluginError::NotAComponent("the bytes do not start with the WebAssembly header".into())),
    }
}

/// Names the limit a failed call hit, or passes the trap on.
fn classify(error: wasmtime::Error, limits: &PluginLimits) -> PluginError {
    if error.chain().any(|e| e.is::<MemoryLimitHit>()) {
        return PluginError::MemoryExceeded(limits.memory_bytes);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => PluginError::FuelExhausted(limits.fuel),
        Some(Trap::Interrupt) => PluginError::Timeout(limits.time_ms),
        Some(Trap::StackOverflow) => PluginError::StackOverflow,
        Some(trap) => PluginError::Trapped(trap.to_string()),
        None => PluginError::Trapped(format!("{error:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        assert!(
            matches!(check_component_header(b"\0asm\x01\0\0\0"), Err(PluginError::NotAComponent(m)) if m.contains("core"))
        );
        assert!(check_component_header(b"\0asm\x0d\0\x01\0").is_ok());
        assert!(matches!(check_component_header(b"hello"), Err(PluginError::NotAComponent(_))));
    }
}
