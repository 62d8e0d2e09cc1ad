//! Group commit for durability: a flush covers every write made before it began, so callers
//! waiting at the same time share one. One flush runs at a time, on a blocking thread, and
//! takes every caller that arrived while the previous one ran.
//!
//! (sled's own `flush_async` runs each flush on sled's I/O threads; many at once can fill that
//! pool while the write they wait for queues behind them.)

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{StoreError, StoreResult};

#[derive(Default)]
struct Tickets {
    /// The last ticket handed out.
    issued: u64,
    /// Whether a flushing thread is running.
    running: bool,
}

/// The last flush: every ticket up to `upto` is covered, and whether it succeeded.
#[derive(Clone)]
struct Flushed {
    upto: u64,
    error: Option<String>,
}

#[derive(Clone)]
pub struct Flusher {
    db: sled::Db,
    tickets: Arc<Mutex<Tickets>>,
    flushed: Arc<watch::Sender<Flushed>>,
}

impl Flusher {
    pub fn new(db: sled::Db) -> Flusher {
        let (flushed, _) = watch::channel(Flushed { upto: 0, error: None });
        Flusher { db, tickets: Arc::default(), flushed: Arc::new(flushed) }
    }

    /// Answers once every write made before the call is on disk.
    pub async fn flush(&self) -> StoreResult<()> {
        let ticket = {
            let mut tickets = self.tickets.lock().expect("flush tickets lock");
            tickets.issued += 1;
            if !std::mem::replace(&mut tickets.running, true) {
                let this = self.clone();
                tokio::task::spawn_blocking(move || this.run());
            }
            tickets.issued
        };
        let mut flushed = self.flushed.subscribe();
        let last = flushed.wait_for(|f| f.upto >= ticket).await.expect("the sender lives with the store").clone();
        // A later flush that succeeded covers this caller's writes as well.
        match last.error {
            None => Ok(()),
            Some(error) => Err(StoreError::Shared(format!("flush failed: {error}"))),
        }
    }

    /// Flushes until no caller is waiting.
    fn run(&self) {
        let mut upto = self.flushed.borrow().upto;
        loop {
            let target = {
                let mut tickets = self.tickets.lock().expect("flush tickets lock");
                if tickets.issued == upto {
                    tickets.running = false;
                    return;
                }
                tickets.issued
            };
            let error = self.db.flush().err().map(|e| {
                tracing::error!(error = %e, "flush failed");
                e.to_string()
            });
            upto = target;
            self.flushed.send_replace(Flushed { upto, error });
        }
    }
}
