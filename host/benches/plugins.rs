//! Plugin runtime figures: `cargo bench -p klaxon --bench plugins` (needs `componentize-py`,
//! `npm install` in `examples/javascript`, and what `examples/c/build.sh` names).
//!
//! - one evaluation of the Rust week-over-week condition and of the Python, JavaScript and C
//!   example conditions,
//!   each in a fresh instance (a new scope key every call) and in a warm one (the same scope key),
//!   against the Rust condition's code compiled natively;
//! - upload to ready (compile, store, flush) through the registry, for the small Rust component
//!   and the 18 MB Python one, with the compile cache cold and warm;
//! - restart (open the database, load every plugin from its stored artifact) with 100 plugins of
//!   each.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use klaxon::clock::{SharedClock, SystemClock};
use klaxon::metrics::Metrics;
use klaxon::plugins::build::{BuildOptions, build};
use klaxon::plugins::io::Evaluation;
use klaxon::plugins::{CallEnv, CompileCache, Engine, PluginKind, Plugins, Tier};
use klaxon::store::Store;
use klaxon::tenants::PluginLimits;
use klaxon::tenants::{Tenant, TenantKey, roles};
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
    let rust = std::fs::read(&built[0]).unwrap();
    let python = std::fs::read(componentize_py(root)).unwrap();
    let javascript = std::fs::read(componentize_js(root)).unwrap();
    let c = std::fs::read(build_c(root)).unwrap();
    println!(
        "components: Rust week-over-week-drop {} bytes; usage-limit in Python {} bytes, JavaScript {} bytes, C {} bytes",
        rust.len(),
        python.len(),
        javascript.len(),
        c.len()
    );

    let input = |config: serde_json::Value| -> Evaluation {
        serde_json::from_value(json!({
            "rule": { "id": "rule_1", "name": "usage" },
            "customer": { "id": "cus_1", "fields": { "plan": "pro" } },
            "value": { "current": 700.0, "previous": 1000.0 },
            "config": config,
        }))
        .unwrap()
    };
    let (rust_input, python_input) = (input(json!({ "drop_percent": 20 })), input(json!({ "limit": 500 })));
    let sdk_input = native_input(&rust_input);
    let native = measure(CALLS, || {
        let verdict =
            klaxon_sdk::evaluate_with::<week_over_week_drop::WeekOverWeekDrop>(std::hint::black_box(&sdk_input));
        assert!(verdict.unwrap().fire);
    });
    println!("evaluate, native Rust (the Rust condition's code): {native}");
    for (language, wasm, input, calls) in [
        ("Rust", &rust, &rust_input, CALLS),
        ("Python", &python, &python_input, CALLS / 10),
        ("JavaScript", &javascript, &python_input, CALLS / 10),
        ("C", &c, &python_input, CALLS),
    ] {
        for tier in Tier::ALL {
            let [fresh, warm] = evaluation(tier, wasm, input, calls);
            let tier = tier.as_str();
            println!("evaluate, {language}, {tier} code, fresh instance: {fresh}");
            println!("evaluate, {language}, {tier} code, warm instance:  {warm}");
            println!(
                "  {language} ({tier}) / native at p50: {:.0}x fresh, {:.0}x warm",
                fresh.p50.as_secs_f64() / native.p50.as_secs_f64(),
                warm.p50.as_secs_f64() / native.p50.as_secs_f64()
            );
        }
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(upload_and_restart("Rust", &rust));
    runtime.block_on(upload_and_restart("Python", &python));
}

/// Builds a language's example condition into `target/guests/<language>/bench-condition.wasm`
/// with the command `build` makes for that output path.
fn build_example(root: &Path, language: &str, build: impl FnOnce(&Path) -> Command) -> PathBuf {
    let out = root.join("target/guests").join(language).join("bench-condition.wasm");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let mut command = build(&out);
    let status = command.status().unwrap_or_else(|e| panic!("the {language} build tool runs: {e}"));
    assert!(status.success(), "the {language} example builds");
    out
}

/// The Python example, with componentize-py (pip install componentize-py).
fn componentize_py(root: &Path) -> PathBuf {
    build_example(root, "python", |out| {
        let mut command = Command::new("componentize-py");
        command.arg("-d").arg(root.join("wit/0.1.0")).args(["-w", "condition", "--quiet", "componentize", "-p"]);
        command.arg(root.join("examples/python/condition")).arg("app").arg("-o").arg(out);
        command.env("PYTHONDONTWRITEBYTECODE", "1");
        command
    })
}

/// The JavaScript example, with componentize-js (npm install in examples/javascript).
fn componentize_js(root: &Path) -> PathBuf {
    let examples = root.join("examples/javascript");
    build_example(root, "javascript", |out| {
        let mut command = Command::new(examples.join("node_modules/.bin/componentize-js"));
        command.arg(examples.join("condition.js")).arg("-w").arg(root.join("wit/0.1.0"));
        command.args(["-n", "condition", "-d", "stdio", "random", "clocks", "http", "fetch-event", "-o"]).arg(out);
        command.stdout(std::process::Stdio::null());
        command
    })
}

/// The C example, with its build script.
fn build_c(root: &Path) -> PathBuf {
    build_example(root, "c", |out| {
        let mut command = Command::new("bash");
        command.arg(root.join("examples/c/build.sh")).arg("condition");
        command.arg(root.join("examples/c/condition/usage_limit.c")).arg(out);
        command
    })
}

/// One evaluation after another: in a fresh instance (every call has its own scope key, so none
/// is ever warm), then in the warm instance of one scope key.
fn evaluation(tier: Tier, wasm: &[u8], input: &Evaluation, calls: usize) -> [Figures; 2] {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 20).unwrap();
    let engine = Engine::new(CompileCache::open(store.compiled_functions(), 1 << 30), 1 << 30).unwrap();
    let prepared = engine.compile(tier, PluginKind::Condition, wasm).unwrap().prepared;
    let clock: SharedClock = Arc::new(SystemClock);
    let call = |scope: &str, warm: bool| {
        let env = CallEnv { limits: LIMITS, kv: store.plugin_kv("ten", "p", scope), clock: clock.clone() };
        let report = engine.evaluate(&prepared, env, input);
        assert!(report.result.unwrap().fire);
        assert_eq!(report.warm, warm);
    };
    let mut n = 0;
    let fresh = measure(calls, || {
        n += 1;
        call(&format!("cus_{n}"), false)
    });
    call("cus_1", false);
    let warm = measure(calls, || call("cus_1", true));
    [fresh, warm]
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
            fields: c
                .fields
                .iter()
                .map(|(name, value)| klaxon_sdk::Field { name: name.clone(), value: field_value(value) })
                .collect(),
        }),
        window: None,
        value: Some(klaxon_sdk::Value { current: value.current, previous: value.previous }),
        event: None,
        state: klaxon_sdk::AlertState::Ok,
        config: input.config.to_string(),
    }
}

/// A field as the host sends it to a 0.2.0 component.
fn field_value(value: &serde_json::Value) -> klaxon_sdk::FieldValue {
    use klaxon_sdk::FieldValue;
    match value {
        serde_json::Value::Null => FieldValue::Null,
        serde_json::Value::Bool(flag) => FieldValue::Boolean(*flag),
        serde_json::Value::Number(number) => FieldValue::Number(number.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(text) => FieldValue::Text(text.clone()),
        other => FieldValue::Json(other.to_string()),
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

/// Times `calls` calls one by one, after a warm-up of a tenth as many.
fn measure(calls: usize, mut call: impl FnMut()) -> Figures {
    for _ in 0..calls / 10 {
        call();
    }
    let mut samples = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        call();
        samples.push(t.elapsed());
    }
    let total = started.elapsed();
    samples.sort();
    Figures { per_second: calls as f64 / total.as_secs_f64(), p50: samples[calls / 2], p99: samples[calls * 99 / 100] }
}

/// 100 uploads of the component under 100 names into a new database (the first with the compile
/// cache cold, and optimized before the next), then restarts that load them all once they are
/// optimized.
async fn upload_and_restart(language: &str, wasm: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let admin = roles::ADMIN;
    let permissions = Arc::new(roles::built_in(admin).expect("the admin role"));
    let key = TenantKey {
        tenant_id: "ten_bench".into(),
        key_id: "key_bench".into(),
        role: admin.into(),
        permissions,
        customer: None,
    };
    let tenant = Tenant {
        id: key.tenant_id.clone(),
        name: "bench".into(),
        created_at: jiff::Timestamp::now(),
        plugin_limits: LIMITS,
        limits: Default::default(),
    };
    let mut uploads = Vec::new();
    {
        let (plugins, _store) = open(dir.path()).await;
        let started = Instant::now();
        for i in 0..100 {
            let started = Instant::now();
            plugins
                .upload(&key, &tenant, &format!("plugin-{i}"), PluginKind::Condition, wasm.to_vec().into())
                .await
                .unwrap();
            uploads.push(started.elapsed());
            if i == 0 {
                optimized(&plugins, 1).await;
                println!("{language}: first upload optimized after {:?}", started.elapsed());
            }
        }
        optimized(&plugins, 100).await;
        println!("{language}: 100 uploads, all optimized after {:?}", started.elapsed());
    }
    let cold = uploads[0];
    uploads.sort();
    println!(
        "{language}: upload to ready (baseline compile, store, flush): first (compile cache cold) {cold:?}; \
         the other 99 p50 {:?}, max {:?}",
        uploads[50], uploads[99]
    );

    let mut restarts = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (plugins, _store) = open(dir.path()).await;
        let loaded = plugins.load_all().await.unwrap();
        restarts.push(started.elapsed());
        assert_eq!(loaded, 100);
        assert_eq!(plugins.loaded_count(), [(Tier::Baseline, 0), (Tier::Optimized, 100)], "from optimized artifacts");
    }
    restarts.sort();
    println!(
        "{language}: restart with 100 stored plugins (open database, load all artifacts): median {:?}",
        restarts[2]
    );
}

/// Waits until `count` versions run optimized code.
async fn optimized(plugins: &Plugins, count: usize) {
    while plugins.loaded_count() != [(Tier::Baseline, 0), (Tier::Optimized, count)] {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn open(dir: &Path) -> (Arc<Plugins>, Store) {
    let store = Store::open(dir, 64 << 20).unwrap();
    let engine = Arc::new(Engine::new(CompileCache::open(store.compiled_functions(), 1 << 30), 1 << 30).unwrap());
    let plugins = Plugins::new(store.clone(), engine, Arc::new(SystemClock), Arc::new(Metrics::default()), None);
    (plugins, store)
}
