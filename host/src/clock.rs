//! The time as Klaxon sees it. Everything that asks "what time is it" goes through a `Clock`,
//! so tests can control time instead of sleeping through it.

use std::sync::Arc;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> jiff::Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

pub type SharedClock = Arc<dyn Clock>;
