//! Group commit: items that arrive together are written together. A caller queues its item and
//! waits; a writer, on a blocking thread while there is work, takes every item waiting (up to
//! a limit), writes them with one call (one transaction), answers each, and takes the next
//! ones. A thousand callers at once cost a handful of transactions instead of a thousand.
//!
//! Items may have owners (`by_owner`): then a round takes one owner's items only, and up to a
//! number of owners are written at once, each by a writer of its own, so an owner whose rounds
//! are long holds back nobody else's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{StoreError, StoreResult};

struct Waiting<T, R> {
    /// In the order they came.
    items: Vec<(T, oneshot::Sender<StoreResult<R>>)>,
    /// Writers running.
    writers: usize,
    /// Owners a writer is writing a round of.
    busy: HashSet<String>,
}

pub struct Group<T, R> {
    waiting: Arc<Mutex<Waiting<T, R>>>,
    /// How much of the limit an item takes, and the limit of a round (a round always takes one).
    weight: fn(&T) -> usize,
    limit: usize,
    /// Whose an item is, when owners are written apart (`by_owner`).
    owner: Option<fn(&T) -> &str>,
    /// Writers running at most.
    max_writers: usize,
}

impl<T, R> Clone for Group<T, R> {
    fn clone(&self) -> Self {
        Group {
            waiting: self.waiting.clone(),
            weight: self.weight,
            limit: self.limit,
            owner: self.owner,
            max_writers: self.max_writers,
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    /// One writer; rounds take the items in the order they came, up to `limit`.
    pub fn new(weight: fn(&T) -> usize, limit: usize) -> Self {
        let waiting = Waiting { items: Vec::new(), writers: 0, busy: HashSet::new() };
        Group { waiting: Arc::new(Mutex::new(waiting)), weight, limit, owner: None, max_writers: 1 }
    }

    /// Up to `max_writers` writers, each writing one owner's rounds (its items in the order they
    /// came, up to `limit`); the owner whose first waiting item came first is written next. An
    /// owner with many items waiting, or whose rounds are long, delays another's items only
    /// when every writer is busy, and then by one round at most.
    pub fn by_owner(weight: fn(&T) -> usize, limit: usize, owner: fn(&T) -> &str, max_writers: usize) -> Self {
        Group { owner: Some(owner), max_writers: max_writers.max(1), ..Self::new(weight, limit) }
    }

    fn owner_of<'a>(&self, item: &'a T) -> &'a str {
        self.owner.map_or("", |owner| owner(item))
    }

    /// The positions of the waiting items the next round takes, in the order they came, and
    /// their owner: the items of the first owner not being written, up to the limit.
    fn round(&self, waiting: &Waiting<T, R>) -> Option<(Vec<usize>, String)> {
        let owners: Vec<&str> = waiting.items.iter().map(|(item, _)| self.owner_of(item)).collect();
        let owner = *owners.iter().find(|owner| !waiting.busy.contains(**owner))?;
        let mut total = 0;
        let taken = (0..owners.len())
            .filter(|i| owners[*i] == owner)
            .enumerate()
            .take_while(|(n, i)| {
                total += (self.weight)(&waiting.items[*i].0);
                *n == 0 || total <= self.limit
            })
            .map(|(_, i)| i)
            .collect();
        Some((taken, owner.to_string()))
    }

    /// Queues `item` and answers once a round has written it. `write` writes a round's items (in
    /// the order they came) and answers each one's outcome, in order; a caller that finds fewer
    /// writers running than allowed starts one with its `write`.
    pub async fn submit<W>(&self, item: T, write: W) -> StoreResult<R>
    where
        W: Fn(Vec<T>) -> Vec<StoreResult<R>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let start_writer = {
            let mut waiting = self.waiting.lock().expect("group lock");
            waiting.items.push((item, reply));
            let start = waiting.writers < self.max_writers;
            waiting.writers += usize::from(start);
            start
        };
        if start_writer {
            let group = self.clone();
            tokio::task::spawn_blocking(move || group.write_all(write));
        }
        answer.await.unwrap_or_else(|_| Err(StoreError::Shared("the write failed".into())))
    }

    /// Writes rounds until none is left that another writer is not writing.
    fn write_all(&self, write: impl Fn(Vec<T>) -> Vec<StoreResult<R>>) {
        let mut written: Option<String> = None;
        loop {
            let (owner, items, replies): (String, Vec<T>, Vec<_>) = {
                let mut waiting = self.waiting.lock().expect("group lock");
                if let Some(owner) = written.take() {
                    waiting.busy.remove(&owner);
                }
                let Some((taken, owner)) = self.round(&waiting) else {
                    waiting.writers -= 1;
                    return;
                };
                let (mut round, mut left) = (Vec::with_capacity(taken.len()), Vec::new());
                for (position, entry) in waiting.items.drain(..).enumerate() {
                    if taken.get(round.len()) == Some(&position) {
                        round.push(entry);
                    } else {
                        left.push(entry);
                    }
                }
                waiting.items = left;
                waiting.busy.insert(owner.clone());
                let (items, replies) = round.into_iter().unzip();
                (owner, items, replies)
            };
            written = Some(owner);
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

/// The positions of items owned by `owners` taken one owner at a time in turn: each owner's
/// first item (owners in the order of their first), then each one's second, and so on.
pub fn round_robin(owners: &[&str]) -> Vec<usize> {
    let mut queues: Vec<VecDeque<usize>> = Vec::new();
    let mut place: HashMap<&str, usize> = HashMap::new();
    for (i, owner) in owners.iter().enumerate() {
        let at = *place.entry(owner).or_insert_with(|| {
            queues.push(VecDeque::new());
            queues.len() - 1
        });
        queues[at].push_back(i);
    }
    let mut order = Vec::with_capacity(owners.len());
    while order.len() < owners.len() {
        order.extend(queues.iter_mut().filter_map(VecDeque::pop_front));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_take_turns() {
        assert_eq!(round_robin(&["a", "a", "a", "b", "c", "b"]), [0, 3, 4, 1, 5, 2]);
        assert_eq!(round_robin(&[]), Vec::<usize>::new());
    }

    /// The round a group of (owner, weight) items takes when they wait in this order and
    /// `busy` are being written: the positions it takes.
    fn round_of(
        group: &Group<(&'static str, usize), ()>,
        waiting: &[(&'static str, usize)],
        busy: &[&str],
    ) -> Vec<usize> {
        let items = waiting.iter().map(|item| (*item, oneshot::channel().0)).collect();
        let busy = busy.iter().map(|owner| owner.to_string()).collect();
        group.round(&Waiting { items, writers: 0, busy }).map_or(Vec::new(), |(taken, _)| taken)
    }

    #[test]
    fn a_round_takes_one_owners_items_up_to_the_limit() {
        let group = Group::by_owner(|item: &(&str, usize)| item.1, 100, |item| item.0, 2);
        let mut waiting = vec![("loud", 40); 10];
        waiting.push(("quiet", 2));
        assert_eq!(round_of(&group, &waiting, &[]), [0, 1]);
        // While the loud owner is written, the quiet one's items are next.
        assert_eq!(round_of(&group, &waiting, &["loud"]), [10]);
        assert_eq!(round_of(&group, &waiting, &["loud", "quiet"]), Vec::<usize>::new());
        // An owner's items go in the order they came: one that does not fit ends the round.
        assert_eq!(round_of(&group, &[("a", 60), ("a", 50), ("b", 30), ("a", 5)], &[]), [0]);
        // A round always takes one item, however heavy.
        assert_eq!(round_of(&group, &[("a", 500), ("b", 1)], &[]), [0]);
        // Without owners, a round takes the items in the order they came.
        let group = Group::new(|item: &(&str, usize)| item.1, 100);
        assert_eq!(round_of(&group, &[("a", 60), ("b", 30), ("a", 5), ("c", 50)], &[]), [0, 1, 2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_owner_whose_round_is_long_holds_back_nobody_else() {
        let group: Group<&'static str, ()> = Group::by_owner(|_| 1, 10, |item| item, 2);
        let (started, has_started) = std::sync::mpsc::channel();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let write = move |items: Vec<&'static str>| {
            if items == ["slow"] {
                started.send(()).unwrap();
                held.lock().unwrap().recv().unwrap();
            }
            items.iter().map(|_| Ok(())).collect()
        };
        let slow = tokio::spawn({
            let (group, write) = (group.clone(), write.clone());
            async move { group.submit("slow", write).await }
        });
        tokio::task::spawn_blocking(move || has_started.recv().unwrap()).await.unwrap();
        // The slow owner's round is under way and waits: another owner's item is written anyway.
        let quick = tokio::time::timeout(std::time::Duration::from_secs(10), group.submit("quick", write.clone()));
        assert!(quick.await.expect("written while the slow round waits").is_ok());
        release.send(()).unwrap();
        assert!(slow.await.unwrap().is_ok());
    }
}
