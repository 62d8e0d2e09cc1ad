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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::render::sample;
    use crate::context::Severity;
    use crate::notifications::silences::SilenceSpec;
    use crate::notifications::subscriptions::SubscriptionSpec;
    use crate::store::Owned;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn subscription(id: &str, group: &str, channels: serde_json::Value, min: Severity) -> Subscription {
        let spec = SubscriptionSpec {
            name: id.into(),
            group: Some(group.into()),
            recipient: None,
            channels: serde_json::from_value(channels).unwrap(),
            min_severity: min,
            enabled: true,
        };
        Owned::new(id.into(), spec, "key_a", at("2030-01-01T00:00:00Z"))
    }

    fn billing_warning() -> Notification {
        let mut n = sample("t", at("2030-01-01T12:00:00Z"));
        n.channels = vec!["chn_rule".into(), "chn_shared".into()];
        n.context.rule.category = Some("billing".into());
        n.context.rule.severity = Severity::Warning;
        n
    }

    #[test]
    fn subscriptions_add_their_channels_once_with_their_groups() {
        let routing = TenantRouting {
            subscriptions: vec![
                subscription(
                    "sub_a",
                    "Org Admins",
                    serde_json::json!({ "billing": ["chn_shared", "chn_org"] }),
                    Severity::Info,
                ),
                subscription("sub_b", "Billing", serde_json::json!({ "billing": ["chn_org"] }), Severity::Warning),
                subscription("sub_c", "Support", serde_json::json!({ "billing": ["chn_support"] }), Severity::Critical),
                subscription("sub_d", "DevOps", serde_json::json!({ "infrastructure": ["chn_ops"] }), Severity::Info),
            ],
            silences: Vec::new(),
        };
        let mut n = billing_warning();
        let now = n.created_at;
        let routes = routing.route(&mut n, now);
        assert_eq!(n.channels, ["chn_org", "chn_rule", "chn_shared"]);
        assert_eq!(n.subscriptions, ["sub_a", "sub_b"]);
        let groups = |channel: &str| {
            let audience = &routes.iter().find(|(c, _)| c == channel).unwrap().1;
            audience.groups.iter().cloned().collect::<Vec<_>>()
        };
        assert_eq!(groups("chn_org"), ["Billing", "Org Admins"]);
        assert_eq!(groups("chn_shared"), ["Org Admins"]);
        assert!(groups("chn_rule").is_empty(), "the rule's own channel addresses no one more");
    }

    #[test]
    fn an_active_silence_keeps_a_notification_from_every_channel() {
        let matchers = serde_json::json!([{ "field": "rule.severity", "op": "in", "value": ["warning"] },
                                          { "field": "customer.tier", "op": "=", "value": "enterprise" }]);
        let spec = SilenceSpec {
            matchers: serde_json::from_value(matchers).unwrap(),
            starts_at: Some(at("2030-01-01T11:00:00Z")),
            ends_at: at("2030-01-01T13:00:00Z"),
            comment: "outage".into(),
        };
        let routing = TenantRouting {
            subscriptions: Vec::new(),
            silences: vec![Owned::new("sil_a".into(), spec, "key_a", at("2030-01-01T00:00:00Z"))],
        };
        let mut n = billing_warning();
        assert!(routing.route(&mut n, at("2030-01-01T12:00:00Z")).is_empty());
        assert_eq!((n.silenced_by.as_deref(), n.channels.len()), (Some("sil_a"), 0));
        for (when, what) in [("2030-01-01T10:59:59Z", "before it starts"), ("2030-01-01T13:00:00Z", "once it ends")] {
            let mut n = billing_warning();
            assert_eq!(routing.route(&mut n, at(when)).len(), 2, "{what}");
            assert_eq!(n.silenced_by, None, "{what}");
        }
        let mut critical = billing_warning();
        critical.context.rule.severity = Severity::Critical;
        assert_eq!(routing.route(&mut critical, at("2030-01-01T12:00:00Z")).len(), 2, "another severity");
    }
}
