//! More than one node on one database. Tenants hash to `PARTITIONS` partitions. Each node
//! heartbeats in the database and holds leases on the partitions rendezvous hashing gives it
//! among the live nodes, renewed every third of a lease; when a node joins, the others let go of
//! what is now its, and when one dies its leases lapse and the survivors take them. A node runs
//! the work time drives (timers, deliveries, the system-event outbox, retention) only for the
//! tenants of the partitions it holds; any node answers the API, and sends a batch of events on
//! to the holder of its tenant (`holder_address`, `api::forward`), which evaluates it (should the
//! holder not answer, the node ingests the batch itself: a transaction is serializable, so nodes
//! writing the same alert at once are put one after the other). Work is
//! claimed in the transaction that records it (a timer taken, a queue entry left), so a node
//! that paused past its lease and resumes does nothing a second time; and what the scheduler
//! writes (evaluations at the holder's clock, which a claim alone would not stop: a rule's windows
//! moving evaluates every alert it has, over several transactions) is written under the lease's
//! epoch (`fence`), so it commits only while the lease is still the node's.
//!
//! What a node caches of a tenant's configuration (rules, routing, cohorts, keys) it forgets when
//! another node notes a change in the store's change feed: at once, as the database announces
//! the change when it commits, and failing that when the node next reads the feed (four times a
//! second); once a minute each forgets everything, the safety net.
//!
//! On the embedded database there is one node: it holds every partition, and notes no change.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::store::Due;
use crate::store::{Fence, Lease, Peer, Store, StoreError, StoreResult, Written};

/// The partitions tenants hash to.
pub const PARTITIONS: u16 = 256;

/// How often the change feed is read, how far back, and how long changes are kept.
const FEED_EVERY: Duration = Duration::from_millis(250);
const FEED_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_secs(10);
const FEED_KEPT: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);
/// How often every cache is forgotten, whatever the feed said.
const RESYNC_EVERY: Duration = Duration::from_secs(60);

/// The `[cluster]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// How long a partition lease lasts unless renewed: the time a dead node's partitions
    /// wait before another node takes them.
    pub lease: crate::duration::Duration,
    /// The base URL the other nodes reach this one at (`http://10.0.0.11:8080`); empty: the
    /// listening address, unless that is every interface (`0.0.0.0`), when no batch of events
    /// is forwarded here.
    pub advertise: String,
}

/// What the cluster asks of the rest of the node.
pub struct Hooks {
    /// Work of a tenant this node works for was written (by any node): look at it now.
    pub due: Box<dyn Fn(Due) + Send + Sync>,
    /// This node took partitions: start what only a tenant's holder starts (cohort
    /// computations). On a blocking thread, after `due` was called for every kind of work.
    pub gained: Box<dyn Fn() + Send + Sync>,
    /// Another node changed the tenant's configuration: forget what is cached of it.
    pub changed: Box<dyn Fn(&str) + Send + Sync>,
}

pub struct Cluster {
    node: String,
    store: Store,
    lease: Duration,
    started_at: Timestamp,
    address: OnceLock<String>,
    held: RwLock<Held>,
    /// The live nodes as of the last heartbeat, in id order.
    peers: RwLock<Vec<Peer>>,
}

/// The leases this node holds, and until when (none: for good, on the embedded database).
struct Held {
    leases: Vec<Lease>,
    until: Option<Instant>,
}

impl Held {
    /// Whether the leases still hold.
    fn live(&self) -> bool {
        self.until.is_none_or(|until| Instant::now() < until)
    }

    /// The lease of `partition`, held or lapsed.
    fn lease(&self, partition: u16) -> Option<Lease> {
        self.leases.binary_search_by_key(&partition, |lease| lease.partition).ok().map(|at| self.leases[at])
    }
}

/// The cluster as `GET /v1/cluster` shows it.
#[derive(Debug, Serialize)]
pub struct View {
    /// The node that answers.
    pub node: String,
    pub partitions: u16,
    pub lease_ms: u64,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Serialize)]
pub struct NodeView {
    pub node: String,
    pub address: String,
    pub started_at: Timestamp,
    pub heartbeat_age_ms: i64,
    /// The partitions it holds, and the epoch of each.
    pub leases: Vec<Lease>,
    /// Since its oldest lease was renewed.
    pub lease_age_ms: Option<i64>,
}

/// FNV-1a, 64 bits, then MurmurHash3's finalizer (so the last bytes move the high bits too):
/// the same on every node and release.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The partition a tenant belongs to.
pub fn partition(tenant: &str) -> u16 {
    (fnv(&[tenant.as_bytes()]) % u64::from(PARTITIONS)) as u16
}

/// The node rendezvous hashing gives `partition` to among `live`.
fn owner(partition: u16, live: &[Peer]) -> Option<&Peer> {
    let weight = |n: &str| fnv(&[n.as_bytes(), &partition.to_be_bytes()]);
    live.iter().max_by_key(|peer| (weight(&peer.node), peer.node.as_str()))
}

/// The partitions rendezvous hashing gives `node` among `live` (which holds it).
fn share(node: &str, live: &[Peer]) -> Vec<u16> {
    (0..PARTITIONS).filter(|p| owner(*p, live).is_some_and(|owner| owner.node == node)).collect()
}

fn millis(since: Timestamp, now: Timestamp) -> i64 {
    now.duration_since(since).as_millis() as i64
}

impl Cluster {
    pub fn new(store: Store, config: &ClusterConfig) -> Self {
        let shared = store.membership().is_some();
        let held = if shared {
            Held { leases: Vec::new(), until: Some(Instant::now()) }
        } else {
            Held { leases: (0..PARTITIONS).map(|partition| Lease { partition, epoch: 1 }).collect(), until: None }
        };
        Cluster {
            node: crate::ids::new_id("node"),
            store,
            lease: Duration::try_from(config.lease.0).expect("the configuration checks the lease is at least 1s"),
            started_at: Timestamp::now(),
            address: OnceLock::new(),
            held: RwLock::new(held),
            peers: RwLock::default(),
        }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The shard of the event-type catalogue this node writes (0 on the embedded database):
    /// one of 64, by its id, so nodes ingesting for one tenant at once seldom write the same
    /// entry, and a tenant's entries per type stay few however often nodes restart.
    pub fn shard(&self) -> u8 {
        if self.store.membership().is_none() { 0 } else { (fnv(&[self.node.as_bytes()]) % 64) as u8 }
    }

    /// How many partitions this node holds now (all of them on the embedded database; none
    /// once its leases lapsed).
    pub fn held_count(&self) -> usize {
        let held = self.held.read().expect("leases lock");
        if held.live() { held.leases.len() } else { 0 }
    }

    /// Where to send the tenant's events, so that its rules are evaluated on the node holding
    /// its partition: that node's address, when it is another node and can be reached (none on
    /// the embedded database, or when the holder gave no address).
    pub fn holder_address(&self, tenant: &str) -> Option<String> {
        self.store.membership()?;
        let peers = self.peers.read().expect("peers lock");
        let holder = owner(partition(tenant), &peers)?;
        (holder.node != self.node && !holder.address.is_empty()).then(|| holder.address.clone())
    }

    /// Whether this node runs the tenant's timed work now.
    pub fn owns(&self, tenant: &str) -> bool {
        let held = self.held.read().expect("leases lock");
        held.live() && held.lease(partition(tenant)).is_some()
    }

    /// The lease this node does the tenant's timed work under, for the transactions that write
    /// it (`Store::transact_under`); none on the embedded database. `StoreError::Fenced` when
    /// this node does not hold the tenant's partition now.
    pub fn fence(&self, tenant: &str) -> StoreResult<Option<Fence>> {
        if self.store.membership().is_none() {
            return Ok(None);
        }
        let partition = partition(tenant);
        let held = self.held.read().expect("leases lock");
        match held.lease(partition) {
            Some(lease) if held.live() => Ok(Some(Fence { node: self.node.clone(), lease })),
            lapsed => Err(StoreError::Fenced { partition, epoch: lapsed.map_or(0, |lease| lease.epoch) }),
        }
    }

    /// Notes a change of the tenant's configuration for the other nodes (none on the embedded
    /// database). Made after the change is stored.
    pub fn changed(&self, tenant: &str) -> StoreResult<()> {
        if self.store.membership().is_none() {
            return Ok(());
        }
        self.store.note_change(Timestamp::now(), &self.node, tenant)
    }

    /// Heartbeats and holds leases, and reads the change feed, while the process lives (on the
    /// embedded database, nothing to do). `address` is the base URL the other nodes reach this
    /// one at (empty: they cannot).
    pub fn spawn(self: &Arc<Self>, address: String, hooks: Hooks) {
        self.address.set(address).expect("the cluster starts once");
        if self.store.membership().is_none() {
            return;
        }
        let hooks = Arc::new(hooks);
        let (this, on_work) = (self.clone(), hooks.clone());
        let membership = self.store.membership().expect("a shared database");
        membership.listen(Box::new(move |written, tenant| match written {
            // This node's own changes too: forgetting costs a read again.
            Written::Change => (on_work.changed)(tenant),
            Written::Work(due) if tenant.is_empty() || this.owns(tenant) => (on_work.due)(due),
            Written::Work(_) => {}
        }));
        let (this, on_gain) = (self.clone(), hooks.clone());
        tokio::spawn(async move {
            loop {
                let (round, on_gain) = (this.clone(), on_gain.clone());
                let gained = tokio::task::spawn_blocking(move || {
                    let gained = round.lease_round();
                    if let Ok(true) = gained {
                        [Due::Deliveries, Due::Timers, Due::Outbox].into_iter().for_each(&on_gain.due);
                        (on_gain.gained)();
                    }
                    gained
                });
                match gained.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "heartbeat failed; leases lapse unless the next one works")
                    }
                    Err(e) => tracing::error!(error = %e, "heartbeat panicked"),
                }
                tokio::time::sleep(this.lease / 3).await;
            }
        });
        let this = self.clone();
        tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut resynced = Instant::now();
            loop {
                let resync = resynced.elapsed() >= RESYNC_EVERY;
                if resync {
                    resynced = Instant::now();
                }
                let (feed, feed_hooks) = (this.clone(), hooks.clone());
                let read = tokio::task::spawn_blocking(move || {
                    let read = feed.read_feed(&mut seen, &feed_hooks, resync);
                    (seen, read)
                });
                match read.await {
                    Ok((kept, read)) => {
                        seen = kept;
                        if let Err(e) = read {
                            tracing::warn!(error = %e, "reading the change feed failed");
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reading the change feed panicked");
                        seen = HashSet::new();
                    }
                }
                tokio::time::sleep(FEED_EVERY).await;
            }
        });
    }

    /// One heartbeat: renews the leases this node holds, takes those now its own and lets go of
    /// the others. True when it took a partition it did not hold.
    fn lease_round(&self) -> StoreResult<bool> {
        let membership = self.store.membership().expect("a shared database");
        let started = Instant::now();
        let address = self.address.get().map_or("", String::as_str);
        let live = membership.heartbeat(&self.node, address, self.lease)?;
        let wanted = share(&self.node, &live);
        *self.peers.write().expect("peers lock") = live.clone();
        let leases = membership.hold(&self.node, &wanted, self.lease)?;
        let mut held = self.held.write().expect("leases lock");
        let gained = leases.iter().any(|lease| !held.leases.contains(lease));
        if gained || leases.len() != held.leases.len() {
            tracing::info!(node = %self.node, partitions = leases.len(), live = live.len(), "leases changed");
        }
        *held = Held { leases, until: Some(started + self.lease) };
        Ok(gained)
    }

    /// Applies the changes other nodes noted in the last seconds that were not applied yet;
    /// with `resync`, forgets what is cached of every tenant and prunes the old changes first.
    fn read_feed(&self, seen: &mut HashSet<Vec<u8>>, hooks: &Hooks, resync: bool) -> StoreResult<()> {
        if resync {
            self.store.prune_changes(Timestamp::now() - FEED_KEPT)?;
            self.store.tenants.ids()?.iter().for_each(|tenant| (hooks.changed)(tenant));
        }
        let since = Timestamp::now() - FEED_WINDOW;
        let changes = self.store.changes_since(since)?;
        let mut keep = HashSet::with_capacity(changes.len());
        for change in changes {
            if !seen.contains(&change.key) && change.node != self.node {
                (hooks.changed)(&change.tenant);
            }
            keep.insert(change.key);
        }
        *seen = keep;
        Ok(())
    }

    /// The nodes and their leases.
    pub fn view(&self) -> StoreResult<View> {
        let now = Timestamp::now();
        let nodes = match self.store.membership() {
            None => vec![NodeView {
                node: self.node.clone(),
                address: self.address.get().cloned().unwrap_or_default(),
                started_at: self.started_at,
                heartbeat_age_ms: 0,
                leases: self.held.read().expect("leases lock").leases.clone(),
                lease_age_ms: None,
            }],
            Some(membership) => membership
                .members(self.lease * 30)?
                .into_iter()
                .map(|m| NodeView {
                    heartbeat_age_ms: millis(m.heartbeat_at, now),
                    lease_age_ms: m.renewed_at.map(|at| millis(at, now)),
                    node: m.node,
                    address: m.address,
                    started_at: m.started_at,
                    leases: m.leases,
                })
                .collect(),
        };
        Ok(View { node: self.node.clone(), partitions: PARTITIONS, lease_ms: self.lease.as_millis() as u64, nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_has_one_owner_and_few_move_when_a_node_joins() {
        let peers = |nodes: &[&str]| -> Vec<Peer> {
            nodes.iter().map(|n| Peer { node: n.to_string(), address: String::new() }).collect()
        };
        let (two, three) = (peers(&["node_a", "node_b"]), peers(&["node_a", "node_b", "node_c"]));
        let shares = |live: &Vec<Peer>| live.iter().map(|n| share(&n.node, live)).collect::<Vec<_>>();
        for live in [&two, &three] {
            let mut all: Vec<u16> = shares(live).concat();
            all.sort();
            assert_eq!(all, (0..PARTITIONS).collect::<Vec<_>>(), "each partition once");
        }
        let (before, after) = (shares(&two), shares(&three));
        let moved = before.iter().zip(&after).map(|(b, a)| b.iter().filter(|p| !a.contains(p)).count()).sum::<usize>();
        assert_eq!(moved, after[2].len(), "only what the new node takes moves");
        assert!(
            after.iter().all(|s| s.len() > 50),
            "roughly even: {:?}",
            after.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }
}
