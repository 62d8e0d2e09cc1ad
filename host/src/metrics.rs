//! Counters exported at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    http_responses: Mutex<BTreeMap<u16, u64>>,
    plugin_compilations: AtomicU64,
    plugin_calls: Mutex<BTreeMap<&'static str, u64>>,
    plugin_call_micros: AtomicU64,
    delivery_attempts: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn http_response(&self, status: u16) {
        *self.http_responses.lock().expect("metrics lock").entry(status).or_default() += 1;
    }

    pub fn plugin_compiled(&self) {
        self.plugin_compilations.fetch_add(1, Ordering::Relaxed);
    }

    /// A finished plugin call: `outcome` is `ok` or the error code.
    pub fn plugin_call(&self, outcome: &'static str, micros: u64) {
        *self.plugin_calls.lock().expect("metrics lock").entry(outcome).or_default() += 1;
        self.plugin_call_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// A finished delivery attempt: `verdict` is `delivered`, `retry` or `failed`.
    pub fn delivery_attempt(&self, verdict: &'static str) {
        *self.delivery_attempts.lock().expect("metrics lock").entry(verdict).or_default() += 1;
    }

    /// The text format, with the gauges the caller reads at scrape time.
    pub fn render(&self, plugins_loaded: usize) -> String {
        let mut out = String::new();
        family(&mut out, "klaxon_http_responses_total", "counter", "HTTP responses by status code.");
        for (status, n) in self.http_responses.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "klaxon_http_responses_total{{status=\"{status}\"}} {n}");
        }
        family(
            &mut out,
            "klaxon_plugin_compilations_total",
            "counter",
            "Plugin components compiled (uploads, and artifacts this build could not reuse).",
        );
        let _ = writeln!(out, "klaxon_plugin_compilations_total {}", self.plugin_compilations.load(Ordering::Relaxed));
        family(&mut out, "klaxon_plugin_calls_total", "counter", "Plugin calls by outcome.");
        for (outcome, n) in self.plugin_calls.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "klaxon_plugin_calls_total{{outcome=\"{outcome}\"}} {n}");
        }
        family(&mut out, "klaxon_plugin_call_seconds_total", "counter", "Time spent in plugin calls.");
        let micros = self.plugin_call_micros.load(Ordering::Relaxed);
        let _ = writeln!(out, "klaxon_plugin_call_seconds_total {}", micros as f64 / 1e6);
        family(&mut out, "klaxon_delivery_attempts_total", "counter", "Delivery attempts by verdict.");
        for (verdict, n) in self.delivery_attempts.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "klaxon_delivery_attempts_total{{verdict=\"{verdict}\"}} {n}");
        }
        family(&mut out, "klaxon_plugins_loaded", "gauge", "Plugin versions compiled and ready in memory.");
        let _ = writeln!(out, "klaxon_plugins_loaded {plugins_loaded}");
        out
    }
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}
