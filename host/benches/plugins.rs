//! Plugin runtime figures: `cargo bench -p klaxon --bench plugins`.
//!
//! - one evaluation of the week-over-week condition in a fresh `Store` (instantiate + call),
//!   against the same Rust code compiled natively;
//! - upload to ready (compile, store, flush) through the registry;
//! - restart (open the database, load every plugin from its stored artifact) with 100 plugins.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use klaxon::clock::{SharedClock, SystemClock};
use klaxon::metrics::Metrics;
use klaxon::plugins::build::{BuildOptions, build};
use klaxon::plugins::io::Evaluation;
use klaxon::plugins::{CallEnv, Engine, KvScope, PluginKind, Plugins};
use klaxon::store::Store;
use klaxon::tenants::PluginLimits;
use klaxon::tenants::{Role, TenantKey};
use serde_json::json;

const CALLS: usize = 20_000;
const LIMITS: PluginLimits = PluginLimits {
    fuel: 50_000_000,
    time_ms: 100,
    memory_bytes: 32 << 20,
    input_bytes: 1 << 18,
    output_bytes: 1 << 18,
};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let built = build(&BuildOptions {
        dir: root.join("plugins/week-over-week-drop"),
        wasi: false,
        target_dir: Some(root.join("target/guests")),
    })
    .expect("the example plugin builds");
    let wasm = std::fs::read(&built[0]).unwrap();
    println!("week-over-week-drop component: {} bytes", wasm.len());

    evaluation(&wasm);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(upload_and_restart(&wasm));
}

fn evaluation(wasm: &[u8]) {
    let engine = Engine::new().unwrap();
    let prepared = engine.compile(PluginKind::Condition, wasm).unwrap().prepared;
    let input: Evaluation = serde_json::from_value(json!({
        "rule": { "id": "rule_1", "name": "usage drop" },
        "customer": { "id": "cus_1", "fields": { "tier": "pro" } },
        "value": { "current": 700.0, "previous": 1000.0 },
        "config": { "drop_percent": 20 },
    }))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tree = sled::open(dir.path()).unwrap().open_tree("kv").unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let wasm_call = || {
        let env =
            CallEnv { limits: LIMITS, kv: KvScope::new(tree.clone(), "ten", "wow", "cus_1"), clock: clock.clone() };
        let report = engine.evaluate(&prepared, env, &input);
        assert!(report.result.unwrap().fire);
    };
    let sdk_input = native_input(&input);
    let native_call = || {
        let verdict =
            klaxon_sdk::evaluate_with::<week_over_week_drop::WeekOverWeekDrop>(std::hint::black_box(&sdk_input));
        assert!(verdict.unwrap().fire);
    };
    let wasm_figures = measure(wasm_call);
    let native_figures = measure(native_call);
    println!("evaluate, fresh Store per call (wasm): {wasm_figures}");
    println!("evaluate, native Rust, same code:       {native_figures}");
    println!(
        "wasm / native: {:.0}x at p50, {:.1}x in throughput",
        wasm_figures.p50.as_secs_f64() / native_figures.p50.as_secs_f64(),
        native_figures.per_second / wasm_figures.per_second
    );
}

/// The same input, as the SDK's types: what the component receives.
fn native_input(input: &Evaluation) -> klaxon_sdk::Evaluation {
    let value = input.value.unwrap();
    klaxon_sdk::Evaluation {
        rule: klaxon_sdk::Rule {
            id: input.rule.id.clone(),
            name: input.rule.name.clone(),
            severity: klaxon_sdk::Severity::Warning,
            category: None,
        },
        scope_key: input.scope_key(),
        customer: input.customer.as_ref().map(|c| klaxon_sdk::Customer {
            id: c.id.clone(),
            name: c.name.clone(),
            fields: serde_json::Value::Object(c.fields.clone()).to_string(),
        }),
        window: None,
        value: Some(klaxon_sdk::Value { current: value.current, previous: value.previous }),
        event: None,
        state: klaxon_sdk::AlertState::Ok,
        config: input.config.to_string(),
    }
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>9.0} calls/s on one thread, p50 {:?}, p99 {:?}", self.per_second, self.p50, self.p99)
    }
}

/// Times `CALLS` calls one by one, after a warm-up.
fn measure(mut call: impl FnMut()) -> Figures {
    for _ in 0..CALLS / 10 {
        call();
    }
    let mut samples = Vec::with_capacity(CALLS);
    let started = Instant::now();
    for _ in 0..CALLS {
        let t = Instant::now();
        call();
        samples.push(t.elapsed());
    }
    let total = started.elapsed();
    samples.sort();
    Figures { per_second: CALLS as f64 / total.as_secs_f64(), p50: samples[CALLS / 2], p99: samples[CALLS * 99 / 100] }
}

async fn upload_and_restart(wasm: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let key = TenantKey { tenant_id: "ten_bench".into(), key_id: "key_bench".into(), role: Role::Admin };
    let mut uploads = Vec::new();
    {
        let (plugins, _store) = open(dir.path()).await;
        for i in 0..100 {
            let started = Instant::now();
            plugins.upload(&key, &format!("plugin-{i}"), PluginKind::Condition, wasm.to_vec().into()).await.unwrap();
            uploads.push(started.elapsed());
        }
    }
    uploads.sort();
    println!("upload to ready (compile, store, flush): p50 {:?}, max {:?} over 100 uploads", uploads[50], uploads[99]);

    let mut restarts = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (plugins, _store) = open(dir.path()).await;
        let loaded = plugins.load_all().await.unwrap();
        restarts.push(started.elapsed());
        assert_eq!(loaded, 100);
    }
    restarts.sort();
    println!("restart with 100 stored plugins (open database, load all artifacts): median {:?}", restarts[2]);
}

async fn open(dir: &Path) -> (Plugins, Store) {
    let store = Store::open(dir, 64 << 20).unwrap();
    let engine = Arc::new(Engine::new().unwrap());
    let plugins = Plugins::new(store.clone(), engine, Arc::new(SystemClock), Arc::new(Metrics::default()));
    (plugins, store)
}
