//! Group commit: items that arrive together are written together. A caller queues its item and
//! waits; one writer, on a blocking thread while there is work, takes every item waiting (up to
//! a limit), writes them with one call (one transaction), answers each, and takes the next
//! ones. A thousand callers at once cost a handful of transactions instead of a thousand; sled
//! runs one transaction at a time anyway.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{StoreError, StoreResult};

struct Waiting<T, R> {
    items: Vec<(T, oneshot::Sender<StoreResult<R>>)>,
    writing: bool,
}

pub struct Group<T, R> {
    waiting: Arc<Mutex<Waiting<T, R>>>,
    /// How much of the limit an item takes, and the limit of a round (a round always takes one).
    weight: fn(&T) -> usize,
    limit: usize,
}

impl<T, R> Clone for Group<T, R> {
    fn clone(&self) -> Self {
        Group { waiting: self.waiting.clone(), weight: self.weight, limit: self.limit }
    }
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    pub fn new(weight: fn(&T) -> usize, limit: usize) -> Self {
        let waiting = Waiting { items: Vec::new(), writing: false };
        Group { waiting: Arc::new(Mutex::new(waiting)), weight, limit }
    }

    /// Queues `item` and answers once a round has written it. `write` writes a round's items (in
    /// the order they came) and answers each one's outcome, in order; the caller that finds no
    /// writer running starts one with its `write`.
    pub async fn submit<W>(&self, item: T, write: W) -> StoreResult<R>
    where
        W: Fn(Vec<T>) -> Vec<StoreResult<R>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let start_writer = {
            let mut waiting = self.waiting.lock().expect("group lock");
            waiting.items.push((item, reply));
            !std::mem::replace(&mut waiting.writing, true)
        };
        if start_writer {
            let group = self.clone();
            tokio::task::spawn_blocking(move || group.write_all(write));
        }
        answer.await.unwrap_or_else(|_| Err(StoreError::Shared("the write failed".into())))
    }

    /// Writes rounds until nothing is waiting.
    fn write_all(&self, write: impl Fn(Vec<T>) -> Vec<StoreResult<R>>) {
        loop {
            let (items, replies): (Vec<T>, Vec<_>) = {
                let mut waiting = self.waiting.lock().expect("group lock");
                if waiting.items.is_empty() {
                    waiting.writing = false;
                    return;
                }
                let mut total = 0;
                let take = waiting
                    .items
                    .iter()
                    .take_while(|(item, _)| {
                        total += (self.weight)(item);
                        total <= self.limit
                    })
                    .count()
                    .max(1);
                waiting.items.drain(..take).unzip()
            };
            // A panic fails the round's callers (their answers drop) and the writer goes on.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(items))) {
                Ok(outcomes) => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        // A caller gone (its request dropped) needs no answer.
                        let _ = reply.send(outcome);
                    }
                }
                Err(_) => tracing::error!("a group write panicked; its callers were told it failed"),
            }
        }
    }
}

/// The outcome of a round done in one step that answers nothing else (a flush, a transaction
/// of records), told to each of its `n` callers.
pub fn each(n: usize, outcome: StoreResult<()>) -> Vec<StoreResult<()>> {
    shared(n, outcome.map(|()| vec![(); n]))
}

/// The outcome of a round written in one transaction, told to each of its `n` callers.
pub fn shared<R>(n: usize, outcome: StoreResult<Vec<R>>) -> Vec<StoreResult<R>> {
    match outcome {
        Ok(each) => each.into_iter().map(Ok).collect(),
        Err(e) => {
            let e = e.to_string();
            (0..n).map(|_| Err(StoreError::Shared(e.clone()))).collect()
        }
    }
}
