//! Counters and histograms exported at `/metrics` in the Prometheus text format.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Metrics {
    http_responses: Mutex<BTreeMap<u16, u64>>,
    /// By compiler tier.
    plugin_compilations: Mutex<BTreeMap<&'static str, u64>>,
    /// Per plugin, by its `tenant/name/` key.
    plugins: Mutex<HashMap<String, PluginStats>>,
    delivery_attempts: Mutex<BTreeMap<&'static str, u64>>,
    /// Batches of events sent on to the node holding their tenant, by outcome.
    forwarded: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn http_response(&self, status: u16) {
        *self.http_responses.lock().expect("metrics lock").entry(status).or_default() += 1;
    }

    /// A component compiled at `tier` (`baseline` or `optimized`).
    pub fn plugin_compiled(&self, tier: &'static str) {
        *self.plugin_compilations.lock().expect("metrics lock").entry(tier).or_default() += 1;
    }

    /// A finished plugin call: `outcome` is `ok` or the error code.
    pub fn plugin_call(&self, plugin: PluginRef<'_>, call: PluginCall) {
        let mut plugins = self.plugins.lock().expect("metrics lock");
        let stats = match plugins.get_mut(plugin.key) {
            Some(stats) => stats,
            None => plugins.entry(plugin.key.to_string()).or_insert_with(|| PluginStats::new(plugin)),
        };
        *stats.calls.entry((call.function, call.outcome)).or_default() += 1;
        stats.warm += u64::from(call.warm);
        stats.seconds.observe(call.micros as f64 / 1e6);
        stats.fuel.observe(call.fuel as f64);
    }

    /// Drops the series of removed plugins, those whose keys start with `prefix`.
    pub fn forget_plugins(&self, prefix: &str) {
        self.plugins.lock().expect("metrics lock").retain(|key, _| !key.starts_with(prefix));
    }

    /// A finished delivery attempt: `verdict` is `delivered`, `retry` or `failed`.
    pub fn delivery_attempt(&self, verdict: &'static str) {
        *self.delivery_attempts.lock().expect("metrics lock").entry(verdict).or_default() += 1;
    }

    /// A batch of events sent on to the node holding its tenant: `outcome` is `answered`
    /// (whatever the answer), or `failed` (unreachable: ingested here instead).
    pub fn ingest_forwarded(&self, outcome: &'static str) {
        *self.forwarded.lock().expect("metrics lock").entry(outcome).or_default() += 1;
    }

    /// The text format, with what the caller reads at scrape time: this node's id and the
    /// partitions it holds, the plugin versions loaded by compiler tier, and the entries and
    /// bytes written to each of the store's trees.
    pub fn render(
        &self,
        node: (&str, usize),
        plugins_loaded: &[(&str, usize)],
        store_written: &[(String, (u64, u64))],
    ) -> String {
        let mut out = String::new();
        family(&mut out, "klaxon_node_info", "gauge", "This node's id in the cluster (1).");
        let _ = writeln!(out, "klaxon_node_info{{node=\"{}\"}} 1", node.0);
        family(
            &mut out,
            "klaxon_partitions_held",
            "gauge",
            "Tenant partitions whose timed work this node runs (all 256 on the embedded database).",
        );
        let _ = writeln!(out, "klaxon_partitions_held {}", node.1);
        family(&mut out, "klaxon_http_responses_total", "counter", "HTTP responses by status code.");
        for (status, n) in self.http_responses.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "klaxon_http_responses_total{{status=\"{status}\"}} {n}");
        }
        family(
            &mut out,
            "klaxon_plugin_compilations_total",
            "counter",
            "Plugin components compiled by tier: baseline for uploads and for artifacts this build \
             could not reuse, optimized in the background for the versions in use.",
        );
        for (tier, n) in self.plugin_compilations.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "klaxon_plugin_compilations_total{{tier=\"{tier}\"}} {n}");
        }
        self.render_plugins(&mut out);
        family(
            &mut out,
            "klaxon_ingest_forwarded_total",
            "counter",
            "Batches of events sent on to the node holding their tenant, by outcome (failed: ingested here).",
        );
        for (outcome, n) in self.forwarded.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "klaxon_ingest_forwarded_total{{outcome=\"{outcome}\"}} {n}");
        }
        family(&mut out, "klaxon_delivery_attempts_total", "counter", "Delivery attempts by verdict.");
        for (verdict, n) in self.delivery_attempts.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "klaxon_delivery_attempts_total{{verdict=\"{verdict}\"}} {n}");
        }
        family(
            &mut out,
            "klaxon_plugins_loaded",
            "gauge",
            "Plugin versions ready in memory, by the tier of their code.",
        );
        for (tier, n) in plugins_loaded {
            let _ = writeln!(out, "klaxon_plugins_loaded{{tier=\"{tier}\"}} {n}");
        }
        let store_families = [
            ("klaxon_store_writes_total", "Entries written or removed in each tree of the store since it opened."),
            (
                "klaxon_store_written_bytes_total",
                "Bytes of the keys and values written or removed in each tree of the store since it opened.",
            ),
        ];
        for (i, (name, help)) in store_families.into_iter().enumerate() {
            family(&mut out, name, "counter", help);
            for (tree, (writes, bytes)) in store_written {
                let _ = writeln!(out, "{name}{{tree=\"{tree}\"}} {}", [writes, bytes][i]);
            }
        }
        out
    }

    fn render_plugins(&self, out: &mut String) {
        let plugins = self.plugins.lock().expect("metrics lock");
        let mut plugins: Vec<&PluginStats> = plugins.values().collect();
        plugins.sort_by(|a, b| a.labels.cmp(&b.labels));
        family(
            out,
            "klaxon_plugin_calls_total",
            "counter",
            "Plugin calls by plugin, function and outcome (ok or the error code).",
        );
        for stats in &plugins {
            for ((function, outcome), n) in &stats.calls {
                let labels = &stats.labels;
                let _ = writeln!(
                    out,
                    "klaxon_plugin_calls_total{{{labels},function=\"{function}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        family(
            out,
            "klaxon_plugin_warm_calls_total",
            "counter",
            "Plugin calls served by an instance kept warm from an earlier call.",
        );
        for stats in &plugins {
            let _ = writeln!(out, "klaxon_plugin_warm_calls_total{{{}}} {}", stats.labels, stats.warm);
        }
        family(out, "klaxon_plugin_call_duration_seconds", "histogram", "Wall time of plugin calls.");
        for stats in &plugins {
            stats.seconds.render(out, "klaxon_plugin_call_duration_seconds", &stats.labels);
        }
        family(out, "klaxon_plugin_fuel_used", "histogram", "Fuel (WebAssembly instructions) used by plugin calls.");
        for stats in &plugins {
            stats.fuel.render(out, "klaxon_plugin_fuel_used", &stats.labels);
        }
    }
}

/// Which plugin a call went to.
#[derive(Debug, Clone, Copy)]
pub struct PluginRef<'a> {
    /// The plugin's `tenant/name/` key.
    pub key: &'a str,
    pub tenant: &'a str,
    pub name: &'a str,
}

/// What a finished plugin call adds to the plugin's series.
#[derive(Debug, Clone, Copy)]
pub struct PluginCall {
    pub function: &'static str,
    pub outcome: &'static str,
    pub warm: bool,
    pub micros: u64,
    pub fuel: u64,
}

#[derive(Debug)]
struct PluginStats {
    /// `tenant="…",plugin="…"`.
    labels: String,
    calls: BTreeMap<(&'static str, &'static str), u64>,
    warm: u64,
    seconds: Histogram,
    fuel: Histogram,
}

/// Upper bounds of the duration buckets, in seconds: from a warm Rust call to a slow one.
const SECONDS_BOUNDS: &[f64] =
    &[0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
/// Upper bounds of the fuel buckets, in instructions: up to the largest budget a tenant gets.
const FUEL_BOUNDS: &[f64] = &[1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7, 1e8, 1e9];

impl PluginStats {
    fn new(plugin: PluginRef<'_>) -> Self {
        PluginStats {
            labels: format!("tenant=\"{}\",plugin=\"{}\"", plugin.tenant, plugin.name),
            calls: BTreeMap::new(),
            warm: 0,
            seconds: Histogram::new(SECONDS_BOUNDS),
            fuel: Histogram::new(FUEL_BOUNDS),
        }
    }
}

/// A Prometheus histogram: counts per bucket (not yet cumulative), their sum and count.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, value: f64) {
        if let Some(bucket) = self.bounds.iter().position(|&bound| value <= bound) {
            self.counts[bucket] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}
