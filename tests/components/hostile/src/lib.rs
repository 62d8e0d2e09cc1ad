//! A condition that misbehaves on purpose, as its config says: the tests check that each
//! misbehaviour is contained to its own call.

use klaxon_sdk::{Condition, Evaluation, Verdict, log};
use serde::Deserialize;
use std::sync::Mutex;

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Spins forever.
    InfiniteLoop,
    /// Allocates until memory runs out.
    MemoryBomb,
    /// Panics, which traps.
    Trap,
    /// Recurses without end.
    StackOverflow,
    /// Returns a message of `bytes` bytes.
    HugeOutput { bytes: usize },
    /// Behaves: logs a line and fires.
    Behave,
    /// Keeps state between calls: answers the scope key the previous call in this instance saw
    /// (label `previous`) and how many calls this instance has served (label `calls`).
    Remember,
}

/// What `Remember` keeps in the instance's memory: the calls served and the last scope key.
static SEEN: Mutex<(u32, Option<String>)> = Mutex::new((0, None));

#[derive(Deserialize)]
pub struct Config {
    pub behaviour: Behaviour,
}

pub struct Hostile;

impl Condition for Hostile {
    type Config = Config;

    fn evaluate(config: Config, input: &Evaluation) -> Result<Verdict, String> {
        match config.behaviour {
            Behaviour::InfiniteLoop => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Behaviour::MemoryBomb => {
                let mut hoard = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            Behaviour::Trap => panic!("deliberate trap"),
            Behaviour::StackOverflow => Ok(Verdict::fire(recurse(1) as f64)),
            Behaviour::HugeOutput { bytes } => Ok(Verdict::fire(0.0).with_message("x".repeat(bytes))),
            Behaviour::Behave => {
                log::info("behaving");
                Ok(Verdict::fire(1.0))
            }
            Behaviour::Remember => {
                let mut seen = SEEN.lock().map_err(|e| e.to_string())?;
                seen.0 += 1;
                let previous = seen.1.replace(input.scope_key.clone()).unwrap_or_else(|| "none".into());
                Ok(Verdict::quiet(0.0).with_label("previous", previous).with_label("calls", seen.0.to_string()))
            }
        }
    }
}

/// Recurses through a function pointer the optimizer cannot see through, so every level is a
/// real WebAssembly call frame until the engine's stack limit stops it.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let next: fn(u64) -> u64 = std::hint::black_box(recurse);
    next(depth + 1).wrapping_add(depth)
}

klaxon_sdk::condition!(Hostile);
