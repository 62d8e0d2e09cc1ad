//! Routing: where a new notification goes. An active silence that matches keeps it from every
//! channel; otherwise it goes to its rule's channels and to the channels each matching
//! subscription gives its category, each channel once, with the subscriptions' audiences.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use jiff::Timestamp;

use super::Notification;
use super::silences::{Silence, State};
use super::subscriptions::Subscription;
use crate::recipients::Audience;
use crate::store::{Collection, Store, StoreResult};

/// A tenant's subscriptions and its silences not yet expired.
#[derive(Default)]
pub struct TenantRouting {
    subscriptions: Vec<Subscription>,
    silences: Vec<Silence>,
}

impl TenantRouting {
    /// Routes `n`: sets its channels, subscriptions or silence, and answers each channel with
    /// the audience it addresses beyond its own.
    pub fn route(&self, n: &mut Notification, now: Timestamp) -> Vec<(String, Audience)> {
        if let Some(silence) = self.silences.iter().find(|s| s.spec.silences(n, now)) {
            n.silenced_by = Some(silence.id.clone());
            n.channels.clear();
            return Vec::new();
        }
        let mut routes: BTreeMap<String, Audience> =
            n.channels.iter().map(|c| (c.clone(), Audience::default())).collect();
        let rule = &n.context.rule;
        if let Some(category) = &rule.category {
            for subscription in &self.subscriptions {
                if let Some(channels) = subscription.spec.channels_for(category, rule.severity) {
                    n.subscriptions.push(subscription.id.clone());
                    let audience = subscription.spec.audience();
                    for channel in channels {
                        routes.entry(channel.clone()).or_default().extend(&audience);
                    }
                }
            }
        }
        n.channels = routes.keys().cloned().collect();
        routes.into_iter().collect()
    }
}

/// Every tenant's routing, read once and kept until a subscription or silence changes.
pub struct Routing {
    subscriptions: Collection,
    silences: Collection,
    cache: RwLock<HashMap<String, Arc<TenantRouting>>>,
}

impl Routing {
    pub fn new(store: &Store) -> Self {
        Routing {
            subscriptions: store.subscriptions.clone(),
            silences: store.silences.clone(),
            cache: RwLock::default(),
        }
    }

    pub fn tenant(&self, tenant: &str, now: Timestamp) -> StoreResult<Arc<TenantRouting>> {
        if let Some(routing) = self.cache.read().expect("routing cache lock").get(tenant) {
            return Ok(routing.clone());
        }
        self.load(tenant, now, false)
    }

    /// Reads the tenant's routing again after a change.
    pub fn changed(&self, tenant: &str, now: Timestamp) -> StoreResult<()> {
        self.load(tenant, now, true).map(|_| ())
    }

    /// Under the write lock, so a concurrent change is never overwritten by an older read.
    fn load(&self, tenant: &str, now: Timestamp, fresh: bool) -> StoreResult<Arc<TenantRouting>> {
        let mut cache = self.cache.write().expect("routing cache lock");
        if !fresh && let Some(routing) = cache.get(tenant) {
            return Ok(routing.clone());
        }
        let mut silences: Vec<Silence> = self.silences.list(tenant)?;
        silences.retain(|s| s.spec.state(now) != State::Expired);
        let routing = Arc::new(TenantRouting { subscriptions: self.subscriptions.list(tenant)?, silences });
        cache.insert(tenant.to_string(), routing.clone());
        Ok(routing)
    }
}
