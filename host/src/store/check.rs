//! A consistency check of the whole store (`klaxon check`): every entry read, and what entries
//! promise one another verified. A tenant's records belong to a tenant that exists; a key to a
//! tenant that exists; a delivery and a queued attempt to a notification that exists; an alert,
//! its counts and its history to a rule that exists; a record that is JSON reads as JSON; the
//! store is at this release's format.

use std::collections::HashSet;

use super::tree::Tree;
use super::{Store, StoreResult, format};

/// Problems listed in full; past this, only counted.
const LISTED: usize = 100;

/// How a tree's keys name their tenant.
#[derive(Clone, Copy)]
enum Keyed {
    /// `tenant/...`
    Slash,
    /// `tenant\0...`
    Nul,
    /// `due tenant\0...` (timers, the delivery queue)
    Due,
    /// Not by tenant.
    Other,
}

/// Trees whose keys begin `tenant/`.
const BY_TENANT_SLASH: &[&str] = &[
    "plugins",
    "plugin_versions",
    "plugin_components",
    "plugin_kv",
    "plugin_logs",
    "customers",
    "events",
    "rules",
    "channels",
    "cohorts",
    "incidents",
    "recipients",
    "categories",
    "subscriptions",
    "silences",
    "roles",
    "portals",
    "time_intervals",
];

/// Trees whose keys begin `tenant\0`.
const BY_TENANT_NUL: &[&str] = &[
    "alerts",
    "alert_counts",
    "transitions",
    "notifications",
    "deliveries",
    "events_by_time",
    "event_types",
    "cohort_members",
    "cohort_batches",
    "open_incidents",
    "batches",
    "batch_members",
    "audit",
    "stats",
    "usage",
];

/// Trees whose values are JSON records.
const JSON: &[&str] = &[
    "tenants",
    "api_keys",
    "plugins",
    "plugin_versions",
    "customers",
    "events",
    "rules",
    "notifications",
    "channels",
    "deliveries",
    "cohorts",
    "incidents",
    "recipients",
    "categories",
    "subscriptions",
    "silences",
    "roles",
    "time_intervals",
];

/// What a check found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Entries read per tree.
    pub trees: Vec<(String, u64)>,
    /// What is wrong, each naming the tree and the entry.
    pub problems: Vec<String>,
    /// Problems past those listed.
    pub unlisted: u64,
}

impl Checked {
    fn problem(&mut self, problem: String) {
        if self.problems.len() < LISTED {
            self.problems.push(problem);
        } else {
            self.unlisted += 1;
        }
    }
}

impl Store {
    /// Reads every entry of the store and checks what entries promise one another. Other
    /// processes may write meanwhile (a cluster's nodes): a record made or removed during the
    /// check can show as a problem, so a problem is confirmed by a second check.
    pub fn check(&self) -> StoreResult<Checked> {
        let mut checked = Checked::default();
        let found = format::stored(&self.meta)?;
        if found != format::FORMAT {
            checked.problem(format!("meta: the store is at format {found}, this release's is {}", format::FORMAT));
        }
        let tenants: HashSet<String> =
            self.tenants.0.iter().keys().map(|k| k.map(lossy)).collect::<StoreResult<_>>()?;
        let rules: HashSet<Vec<u8>> = self
            .rules
            .0
            .iter()
            .keys()
            .map(|key| key.map(|key| lossy(key).replacen('/', "\0", 1).into_bytes()))
            .collect::<StoreResult<_>>()?;
        let notifications: HashSet<Vec<u8>> = self.notifications.iter().keys().collect::<StoreResult<_>>()?;
        for tree in &self.every_tree {
            let name = tree.name();
            let keyed = if BY_TENANT_SLASH.contains(&name) {
                Keyed::Slash
            } else if BY_TENANT_NUL.contains(&name) {
                Keyed::Nul
            } else if ["timers", "delivery_queue"].contains(&name) {
                Keyed::Due
            } else {
                Keyed::Other
            };
            let count = check_tree(tree, keyed, &tenants, &rules, &notifications, &mut checked)?;
            checked.trees.push((name.to_string(), count));
        }
        Ok(checked)
    }
}

fn check_tree(
    tree: &Tree,
    keyed: Keyed,
    tenants: &HashSet<String>,
    rules: &HashSet<Vec<u8>>,
    notifications: &HashSet<Vec<u8>>,
    checked: &mut Checked,
) -> StoreResult<u64> {
    let name = tree.name();
    let json = JSON.contains(&name);
    let mut count = 0;
    for entry in tree.iter() {
        let (key, value) = entry?;
        count += 1;
        let shown = || format!("{name} {:?}", lossy(key.clone()));
        // The key's tenant, and what it is under (a rule, a notification) for `\0` keys.
        let (tenant, under) = match keyed {
            Keyed::Slash => (lossy(key.clone()).split('/').next().map(str::to_string), None),
            Keyed::Nul => split(&key),
            Keyed::Due => key.get(8..).map_or((None, None), split),
            Keyed::Other if name == "api_keys" => {
                let key: Option<serde_json::Value> = serde_json::from_slice(&value).ok();
                (key.and_then(|key| key["tenant_id"].as_str().map(str::to_string)), None)
            }
            Keyed::Other => (None, None),
        };
        // The platform's audit entries are under the empty tenant.
        let platform = name == "audit" && tenant.as_deref() == Some("");
        if let Some(tenant) = &tenant
            && !platform
            && !tenants.contains(tenant)
        {
            checked.problem(format!("{}: of tenant `{tenant}`, which does not exist", shown()));
        }
        if json && serde_json::from_slice::<serde::de::IgnoredAny>(&value).is_err() {
            checked.problem(format!("{}: its record is not JSON", shown()));
        }
        // What an entry belongs to beside its tenant: the notification of a delivery or of a
        // queued attempt, the rule of an alert, its counts or its history.
        let owner = match name {
            "deliveries" | "delivery_queue" => Some(("notification", notifications)),
            "alerts" | "alert_counts" | "transitions" => Some(("rule", rules)),
            _ => None,
        };
        let owner = owner
            .zip(tenant.as_ref().zip(under))
            .map(|((what, known), (tenant, under))| (what, [tenant.as_bytes(), b"\0", &under].concat(), known));
        if let Some((what, owner, known)) = owner
            && !known.contains(&owner)
        {
            checked.problem(format!("{}: its {what} does not exist", shown()));
        }
    }
    Ok(count)
}

/// A `tenant\0second\0...` key's tenant and second part.
fn split(key: &[u8]) -> (Option<String>, Option<Vec<u8>>) {
    let mut parts = key.splitn(3, |b| *b == 0);
    let tenant = parts.next().map(|t| String::from_utf8_lossy(t).into_owned());
    (tenant, parts.next().map(<[u8]>::to_vec))
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}
