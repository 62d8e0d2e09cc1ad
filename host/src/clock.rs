//! The time as Klaxon sees it. Everything that asks "what time is it" goes through a `Clock`,
//! so tests can control time instead of sleeping through it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

/// A clock that stands still until it is moved, for tests (`klaxon serve --manual-clock`). It
/// starts at the time it is given (the server's start, unless `--manual-clock-start`) and only
/// moves forward.
#[derive(Debug)]
pub struct ManualClock {
    now: RwLock<jiff::Timestamp>,
}

impl ManualClock {
    pub fn new(start: jiff::Timestamp) -> Self {
        ManualClock { now: RwLock::new(start) }
    }

    /// Moves the clock to `to`; refused (with the current time) when `to` is in its past.
    pub fn set(&self, to: jiff::Timestamp) -> Result<(), jiff::Timestamp> {
        let mut now = self.now.write().expect("clock lock");
        if to < *now {
            return Err(*now);
        }
        *now = to;
        Ok(())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> jiff::Timestamp {
        *self.now.read().expect("clock lock")
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// A number for ordering records made at `now`: its microseconds since the epoch, raised when
/// needed so each call in this process gets a larger number than the one before (records made
/// at the same instant keep the order they were made in).
pub fn sequence(now: jiff::Timestamp) -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let micros = now.as_microsecond().max(0) as u64;
    let previous = LAST.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(micros.max(last + 1)));
    micros.max(previous.expect("the update always applies") + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_only_moves_forward() {
        let start: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        let later: jiff::Timestamp = "2030-01-08T00:00:00Z".parse().unwrap();
        clock.set(later).unwrap();
        assert_eq!(clock.now(), later);
        assert_eq!(clock.set(start), Err(later));
    }
}
