//! Group commit: items that arrive together are written together. A caller queues its item and
//! waits; one writer, on a blocking thread while there is work, takes every item waiting (up to
//! a limit), writes them with one call (one transaction), answers each, and takes the next
//! ones. A thousand callers at once cost a handful of transactions instead of a thousand; sled
//! runs one transaction at a time anyway.

use std::collections::{HashMap, HashSet, VecDeque};
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
    /// Whose an item is, when rounds are shared fairly (`fair`).
    owner: Option<fn(&T) -> &str>,
}

impl<T, R> Clone for Group<T, R> {
    fn clone(&self) -> Self {
        Group { waiting: self.waiting.clone(), weight: self.weight, limit: self.limit, owner: self.owner }
    }
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    /// Rounds take the items in the order they came, up to `limit`.
    pub fn new(weight: fn(&T) -> usize, limit: usize) -> Self {
        let waiting = Waiting { items: Vec::new(), writing: false };
        Group { waiting: Arc::new(Mutex::new(waiting)), weight, limit, owner: None }
    }

    /// Rounds take one item of each owner in turn (each owner's in the order they came), up to
    /// `limit`: an owner with many items waiting delays another's next item by one round at
    /// most, however many it sends.
    pub fn fair(weight: fn(&T) -> usize, limit: usize, owner: fn(&T) -> &str) -> Self {
        Group { owner: Some(owner), ..Self::new(weight, limit) }
    }

    /// The positions of the waiting items the next round takes, in the order they came.
    fn round(&self, items: &[(T, oneshot::Sender<StoreResult<R>>)]) -> Vec<usize> {
        let mut total = 0;
        let Some(owner) = self.owner else {
            let take = items
                .iter()
                .take_while(|(item, _)| {
                    total += (self.weight)(item);
                    total <= self.limit
                })
                .count();
            return (0..take.max(1)).collect();
        };
        let owners: Vec<&str> = items.iter().map(|(item, _)| owner(item)).collect();
        // An owner whose next item does not fit has no later one taken either.
        let mut full: HashSet<&str> = HashSet::new();
        let mut taken = Vec::new();
        for i in round_robin(&owners) {
            if full.contains(owners[i]) {
                continue;
            }
            let weight = (self.weight)(&items[i].0);
            if total + weight <= self.limit || taken.is_empty() {
                total += weight;
                taken.push(i);
            } else {
                full.insert(owners[i]);
            }
        }
        taken.sort_unstable();
        taken
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
                let taken = self.round(&waiting.items);
                let (mut round, mut left) = (Vec::with_capacity(taken.len()), Vec::new());
                for (position, entry) in waiting.items.drain(..).enumerate() {
                    if taken.get(round.len()) == Some(&position) {
                        round.push(entry);
                    } else {
                        left.push(entry);
                    }
                }
                waiting.items = left;
                round.into_iter().unzip()
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

    /// A fair round of (owner, weight) items waiting in this order: the positions it takes.
    fn fair_round(waiting: &[(&'static str, usize)], limit: usize) -> Vec<usize> {
        let group: Group<(&'static str, usize), ()> = Group::fair(|item| item.1, limit, |item| item.0);
        let items: Vec<_> = waiting.iter().map(|item| (*item, oneshot::channel().0)).collect();
        group.round(&items)
    }

    #[test]
    fn a_loud_owner_does_not_keep_a_quiet_one_out_of_the_next_round() {
        let mut waiting = vec![("loud", 40); 10];
        waiting.push(("quiet", 2));
        // First in, first out would take the loud owner's first two only.
        assert_eq!(fair_round(&waiting, 100), [0, 1, 10]);
        // An owner whose next item does not fit waits, in order, while others' still fit.
        assert_eq!(fair_round(&[("a", 60), ("a", 50), ("b", 30), ("a", 5)], 100), [0, 2]);
        // A round always takes one item, however heavy.
        assert_eq!(fair_round(&[("a", 500), ("b", 1)], 100), [0]);
    }
}
