//! A condition built for wasm32-wasip2, so it imports WASI as components from standard
//! toolchains do. It prints, and reports what the sandbox let it reach.

use klaxon_sdk::{Condition, Evaluation, Verdict};

pub struct WasiProbe;

impl Condition for WasiProbe {
    type Config = serde::de::IgnoredAny;

    fn evaluate(_config: serde::de::IgnoredAny, _input: &Evaluation) -> Result<Verdict, String> {
        println!("hello from stdout");
        eprintln!("hello from stderr");
        let file = std::fs::read_to_string("/etc/hostname").is_ok();
        let env = std::env::vars().count();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(Verdict::quiet(0.0)
            .with_label("file", file.to_string())
            .with_label("env", env.to_string())
            .with_label("unix_seconds", now.to_string()))
    }
}

klaxon_sdk::condition!(WasiProbe);
