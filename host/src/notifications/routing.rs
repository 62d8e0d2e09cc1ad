//! Routing: where a new notification goes. An active silence that matches keeps it from every
//! channel; otherwise it goes to its rule's channels and to the channels each matching
//! subscription gives its category, each channel once, with the subscriptions' audiences. A
//! channel's noise control (or, for a channel only subscriptions brought, theirs) may hold it
//! for a digest or a group instead of sending it at once, or, outside its active times, hold or
//! drop it (a subscription outside its own does not route at all, or holds).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use jiff::Timestamp;
use serde::Deserialize;

use super::Notification;
use super::silences::{Silence, State};
use super::subscriptions::Subscription;
use crate::channels::noise::{Gate, Hold, Noise};
use crate::recipients::Audience;
use crate::records::Owned;
use crate::store::{Collection, Store, StoreResult};
use crate::time_intervals::{Schedules, TimeIntervalSpec};

/// Where a notification goes on one channel: to whom beyond the channel's own addresses, and
/// whether it is held.
#[derive(Debug)]
pub struct Route {
    pub channel: String,
    pub audience: Audience,
    pub hold: Option<Hold>,
}

/// A tenant's subscriptions, its silences not yet expired, and its channels' noise control.
#[derive(Default)]
pub struct TenantRouting {
    subscriptions: Vec<(Subscription, Noise)>,
    silences: Vec<Silence>,
    /// The tenant's time intervals, which silences name.
    schedules: Schedules,
    /// Only channels that have some.
    channels: HashMap<String, Noise>,
}

impl TenantRouting {
    /// Routes `n`: sets its channels, subscriptions or silence, and answers each channel's
    /// route.
    pub fn route(&self, n: &mut Notification, now: Timestamp) -> Vec<Route> {
        if let Some(silence) = self.silences.iter().find(|s| s.spec.silences(n, now, &self.schedules)) {
            n.silenced_by = Some(silence.id.clone());
            n.channels.clear();
            return Vec::new();
        }
        let mut reaches: BTreeMap<String, Reach> =
            n.channels.iter().map(|c| (c.clone(), Reach { by_rule: true, ..Reach::default() })).collect();
        let rule = &n.context.rule;
        if let Some(category) = &rule.category {
            for (subscription, noise) in &self.subscriptions {
                let Some(channels) = subscription.spec.channels_for(category, rule.severity) else { continue };
                let Gate::Send(hold) = noise.gate(n, now, &self.schedules) else { continue };
                n.subscriptions.push(subscription.id.clone());
                let audience = subscription.spec.audience();
                for channel in channels {
                    let reach = reaches.entry(channel.clone()).or_default();
                    reach.audience.extend(&audience);
                    reach.holds.push(hold.clone());
                }
            }
        }
        let routes: Vec<Route> = reaches
            .into_iter()
            .filter_map(|(channel, reach)| {
                let hold = match self.channels.get(&channel).map(|noise| noise.gate(n, now, &self.schedules)) {
                    Some(Gate::Drop) => return None,
                    Some(Gate::Send(hold)) => hold,
                    None => reach.hold(),
                };
                Some(Route { channel, audience: reach.audience, hold })
            })
            .collect();
        n.channels = routes.iter().map(|route| route.channel.clone()).collect();
        routes
    }
}

/// How a notification reaches one channel: by its rule, by subscriptions (each with its hold).
#[derive(Default)]
struct Reach {
    audience: Audience,
    by_rule: bool,
    holds: Vec<Option<Hold>>,
}

impl Reach {
    /// For a channel without noise control of its own: at once when the rule names it or any
    /// subscription wants it so; otherwise with the earliest batch.
    fn hold(&self) -> Option<Hold> {
        if self.by_rule {
            return None;
        }
        self.holds.iter().cloned().collect::<Option<Vec<Hold>>>()?.into_iter().min_by_key(|h| h.until)
    }
}

/// The noise control of a stored channel.
#[derive(Deserialize)]
struct ChannelNoise {
    id: String,
    spec: Noise,
}

/// Every tenant's routing, read once and kept until a subscription, silence or channel changes.
pub struct Routing {
    subscriptions: Collection,
    silences: Collection,
    time_intervals: Collection,
    channels: Collection,
    cache: RwLock<HashMap<String, Arc<TenantRouting>>>,
}

impl Routing {
    pub fn new(store: &Store) -> Self {
        Routing {
            subscriptions: store.subscriptions.clone(),
            silences: store.silences.clone(),
            time_intervals: store.time_intervals.clone(),
            channels: store.channels.clone(),
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
        let subscriptions = self.subscriptions.list::<Subscription>(tenant)?.into_iter().map(|s| {
            let noise = s.spec.noise();
            (s, noise)
        });
        let channels = self
            .channels
            .list::<ChannelNoise>(tenant)?
            .into_iter()
            .filter(|c| !c.spec.is_empty())
            .map(|c| (c.id, c.spec))
            .collect();
        let intervals: Vec<Owned<TimeIntervalSpec>> = self.time_intervals.list(tenant)?;
        let schedules = intervals.into_iter().map(|i| (i.id, i.spec.schedule())).collect();
        let routing = Arc::new(TenantRouting { subscriptions: subscriptions.collect(), silences, schedules, channels });
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
    use crate::records::Owned;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn subscription(id: &str, group: &str, channels: serde_json::Value, min: Severity) -> Subscription {
        let spec: SubscriptionSpec = serde_json::from_value(serde_json::json!({
            "name": id, "group": group, "channels": channels, "min_severity": min,
        }))
        .unwrap();
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
            subscriptions: [
                subscription(
                    "sub_a",
                    "Org Admins",
                    serde_json::json!({ "billing": ["chn_shared", "chn_org"] }),
                    Severity::Info,
                ),
                subscription("sub_b", "Billing", serde_json::json!({ "billing": ["chn_org"] }), Severity::Warning),
                subscription("sub_c", "Support", serde_json::json!({ "billing": ["chn_support"] }), Severity::Critical),
                subscription("sub_d", "DevOps", serde_json::json!({ "infrastructure": ["chn_ops"] }), Severity::Info),
            ]
            .into_iter()
            .map(|s| (s, Noise::default()))
            .collect(),
            ..TenantRouting::default()
        };
        let mut n = billing_warning();
        let now = n.created_at;
        let routes = routing.route(&mut n, now);
        assert_eq!(n.channels, ["chn_org", "chn_rule", "chn_shared"]);
        assert_eq!(n.subscriptions, ["sub_a", "sub_b"]);
        let groups = |channel: &str| {
            let audience = &routes.iter().find(|r| r.channel == channel).unwrap().audience;
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
            ends_at: Some(at("2030-01-01T13:00:00Z")),
            during: Vec::new(),
            comment: "outage".into(),
        };
        let routing = TenantRouting {
            silences: vec![Owned::new("sil_a".into(), spec, "key_a", at("2030-01-01T00:00:00Z"))],
            ..TenantRouting::default()
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

    #[test]
    fn a_channel_reached_only_through_holding_subscriptions_is_held() {
        let digest: SubscriptionSpec = serde_json::from_value(serde_json::json!({
            "name": "digest", "group": "Org Admins", "channels": { "billing": ["chn_org", "chn_both"] },
            "digest": { "every": "1h" },
        }))
        .unwrap();
        let routing = TenantRouting {
            subscriptions: vec![
                (Owned::new("sub_a".into(), digest.clone(), "key_a", at("2030-01-01T00:00:00Z")), digest.noise()),
                {
                    let s = subscription(
                        "sub_b",
                        "Billing",
                        serde_json::json!({ "billing": ["chn_both"] }),
                        Severity::Info,
                    );
                    let noise = s.spec.noise();
                    (s, noise)
                },
            ],
            channels: [("chn_rule".to_string(), Noise { group_by: vec!["rule.id".into()], ..Noise::default() })].into(),
            ..TenantRouting::default()
        };
        let mut n = billing_warning();
        let now = n.created_at;
        let routes = routing.route(&mut n, now);
        let hold = |channel: &str| routes.iter().find(|r| r.channel == channel).unwrap().hold.clone();
        assert_eq!(hold("chn_org").map(|h| h.until), Some(at("2030-01-01T13:00:00Z")), "the digest's channel");
        assert_eq!(hold("chn_both"), None, "another subscription wants it at once");
        assert_eq!(hold("chn_shared"), None, "the rule names it and it has no noise control");
        assert_eq!(hold("chn_rule").map(|h| h.until), Some(at("2030-01-01T12:00:30Z")), "the channel groups");
    }
}
