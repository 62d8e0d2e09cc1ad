//! Deleting a tenant: every record it owns, in every tree, removed in one transaction (a crash
//! keeps all of it or none of it). The keys to remove are gathered first; the transaction then
//! removes them together with the tenant record, so a tenant is never half gone.

use std::collections::HashSet;

use serde::Deserialize;

use super::backend::Bytes;
use super::plugins::plugin_id;
use super::status_pages::{page_key, slug_key};
use super::tree::Tree;
use super::{Store, StoreResult, decode, keys, removal, transaction};
use crate::records::system::Pending;

/// What the key-id-keyed records tell of their tenant.
#[derive(Deserialize)]
struct KeyOwner {
    tenant_id: String,
}

/// What a console session tells of the key it was opened with (none: the platform admin's).
#[derive(Deserialize)]
struct SessionKey {
    credential: SessionCredential,
}

#[derive(Deserialize)]
struct SessionCredential {
    key_id: Option<String>,
}

/// The keys of the entries `owns` picks.
fn picked(tree: &Tree, owns: impl Fn(&[u8], &[u8]) -> StoreResult<bool>) -> StoreResult<Vec<Bytes>> {
    let mut keys = Vec::new();
    for entry in tree.iter() {
        let (key, bytes) = entry?;
        if owns(&key, &bytes)? {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// Applies every tree's removals in one transaction.
fn remove_together(removals: Vec<(&Tree, Vec<Bytes>)>) -> StoreResult<()> {
    let (trees, keys): (Vec<&Tree>, Vec<Vec<Bytes>>) = removals.into_iter().unzip();
    transaction(&trees, |trees| trees.iter().zip(&keys).try_for_each(|(tree, keys)| tree.remove_all(keys)))
}

impl Store {
    /// Removes the tenant and everything it owns; `false` when there is no such tenant. The
    /// compiled-function cache is shared by all tenants and stays.
    pub fn delete_tenant(&self, tenant: &str) -> StoreResult<bool> {
        if !self.tenants.0.contains_key(tenant)? {
            return Ok(false);
        }
        let slash = keys::record(tenant, "");
        let slash = slash.as_bytes();
        let nul = keys::named(tenant, "");
        // Timer and queue keys lead with a due time, then the tenant.
        let after_due = |key: &[u8], _: &[u8]| Ok(key.get(8..).is_some_and(|rest| rest.starts_with(&nul)));
        let text = |key: &[u8]| String::from_utf8_lossy(key).into_owned();
        let (page, slugs) = (page_key(tenant), slug_key(""));
        let status_page = picked(&self.status_pages, |key, owner| {
            Ok(key == page.as_bytes() || (key.starts_with(slugs.as_bytes()) && owner == tenant.as_bytes()))
        })?;
        let api_keys =
            picked(&self.api_keys.0, |key, bytes| Ok(decode::<KeyOwner>(&text(key), bytes)?.tenant_id == tenant))?;
        let key_ids: HashSet<&[u8]> = api_keys.iter().map(|key| &key[..]).collect();
        let sessions = picked(&self.sessions.0, |key, bytes| {
            let session: SessionKey = decode(&text(key), bytes)?;
            Ok(session.credential.key_id.is_some_and(|id| key_ids.contains(id.as_bytes())))
        })?;
        let mut removals = vec![
            (&self.tenants.0, vec![Bytes::from(tenant)]),
            (&self.api_keys.0, api_keys),
            (&self.sessions.0, sessions),
            (
                &self.system_events,
                picked(&self.system_events, |key, bytes| Ok(decode::<Pending>(&text(key), bytes)?.tenant == tenant))?,
            ),
            (&self.timers, picked(&self.timers, after_due)?),
            (&self.delivery_queue, picked(&self.delivery_queue, after_due)?),
            (&self.status_pages, status_page),
        ];
        for tree in [
            &self.plugins,
            &self.plugin_versions,
            &self.plugin_components,
            &self.plugin_kv,
            &self.plugin_logs,
            &self.customers,
            &self.events,
            &self.rules.0,
            &self.channels.0,
            &self.cohorts.0,
            &self.incidents.0,
            &self.recipients.0,
            &self.categories.0,
            &self.subscriptions.0,
            &self.silences.0,
            &self.roles.0,
            &self.portals.0,
            &self.time_intervals.0,
        ] {
            removals.push((tree, removal(tree, slash)?));
        }
        for tree in [
            &self.alerts,
            &self.alert_counts,
            &self.transitions,
            &self.notifications,
            &self.deliveries,
            &self.events_by_time,
            &self.event_types,
            &self.cohort_members,
            &self.cohort_batches,
            &self.open_incidents,
            &self.batches,
            &self.batch_members,
            &self.audit,
            &self.stats,
            &self.usage,
        ] {
            removals.push((tree, removal(tree, &nul)?));
        }
        remove_together(removals)?;
        Ok(true)
    }

    /// Removes a plugin with all its versions, components, key-value entries and log lines;
    /// `false` when there is no such plugin.
    pub fn delete_plugin(&self, tenant: &str, name: &str) -> StoreResult<bool> {
        let prefix = plugin_id(tenant, name);
        let prefix = prefix.as_bytes();
        if !self.plugins.contains_key(prefix)? {
            return Ok(false);
        }
        let mut removals = Vec::new();
        for tree in [&self.plugins, &self.plugin_versions, &self.plugin_components, &self.plugin_kv, &self.plugin_logs]
        {
            removals.push((tree, removal(tree, prefix)?));
        }
        remove_together(removals)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry per tree for `tenant`, keyed as its owner keys it.
    fn write_tenant(store: &Store, tenant: &str) {
        let slash = |id: &str| format!("{tenant}/{id}").into_bytes();
        let nul = |id: &str| [tenant.as_bytes(), b"\0", id.as_bytes()].concat();
        let due = |id: &str| [&[0x80, 0, 0, 0, 0, 0, 0, 1][..], &nul(id)].concat();
        let json = |value: serde_json::Value| value.to_string().into_bytes();
        let event = crate::records::Event {
            id: format!("sys_{tenant}"),
            customer_id: None,
            event_type: "channel.disabled".into(),
            timestamp: jiff::Timestamp::UNIX_EPOCH,
            properties: Default::default(),
            received_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let outboxed = super::super::queues::outbox_entry(tenant, event, None);
        let entries: Vec<(&Tree, Vec<u8>, Vec<u8>)> = vec![
            (&store.tenants.0, tenant.as_bytes().to_vec(), json(serde_json::json!({ "id": tenant }))),
            (&store.api_keys.0, format!("key_{tenant}").into_bytes(), json(serde_json::json!({ "tenant_id": tenant }))),
            (
                &store.sessions.0,
                slash("s"),
                json(serde_json::json!({ "credential": { "key_id": format!("key_{tenant}") } })),
            ),
            (&store.system_events, outboxed.0, outboxed.1),
            (&store.timers, due("rule\0scope"), vec![]),
            (&store.delivery_queue, due("n\0c"), vec![]),
            (&store.status_pages, format!("tenant/{tenant}").into_bytes(), vec![]),
            (&store.status_pages, format!("slug/page-{tenant}").into_bytes(), tenant.as_bytes().to_vec()),
            (&store.plugins, slash("p/"), vec![]),
            (&store.plugin_versions, slash("p/1"), vec![]),
            (&store.plugin_components, slash("p/1"), vec![]),
            (&store.plugin_kv, slash("p/k"), vec![]),
            (&store.plugin_logs, slash("p/1"), vec![]),
            (&store.customers, slash("c"), vec![]),
            (&store.events, slash("e"), vec![]),
            (&store.rules.0, slash("r"), vec![]),
            (&store.channels.0, slash("c"), vec![]),
            (&store.cohorts.0, slash("c"), vec![]),
            (&store.incidents.0, slash("i"), vec![]),
            (&store.recipients.0, slash("r"), vec![]),
            (&store.categories.0, slash("c"), vec![]),
            (&store.subscriptions.0, slash("s"), vec![]),
            (&store.silences.0, slash("s"), vec![]),
            (&store.roles.0, slash("r"), vec![]),
            (&store.portals.0, slash("portal"), vec![]),
            (&store.time_intervals.0, slash("t"), vec![]),
            (&store.alerts, nul("r\0s"), vec![]),
            (&store.alert_counts, nul("r\0"), vec![]),
            (&store.transitions, nul("r\0t"), vec![]),
            (&store.notifications, nul("n"), vec![]),
            (&store.deliveries, nul("n\0c"), vec![]),
            (&store.events_by_time, nul("t"), vec![]),
            (&store.event_types, nul("t"), vec![]),
            (&store.cohort_members, nul("c\0m"), vec![]),
            (&store.cohort_batches, nul("r\0m"), vec![]),
            (&store.open_incidents, nul("r\0s"), vec![]),
            (&store.batches, nul("c\0b"), vec![]),
            (&store.batch_members, nul("b\0m"), vec![]),
            (&store.audit, nul("0000000000000001"), b"{}".to_vec()),
            (&store.stats, nul("0000000000000001"), b"{}".to_vec()),
            (&store.usage, nul("events"), 1u64.to_be_bytes().to_vec()),
        ];
        for (tree, key, value) in entries {
            tree.insert(key, value).unwrap();
        }
    }

    /// Every entry of every tree of records, as text.
    fn everything(store: &Store) -> Vec<String> {
        let mut all = Vec::new();
        for tree in store.records() {
            for entry in tree.iter() {
                let (key, value) = entry.unwrap();
                let (key, value) = (String::from_utf8_lossy(&key), String::from_utf8_lossy(&value));
                all.push(format!("{} {key} {value}", tree.name()));
            }
        }
        all
    }

    #[test]
    fn deleting_a_tenant_removes_all_it_owns_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        // A tenant whose id extends the deleted one's keeps everything.
        write_tenant(&store, "ten_ab");
        let kept = everything(&store);
        // Every tree a tenant's records live in is covered (the compiled-function cache and the
        // change feed, which is pruned by age, are shared).
        let mut covered: Vec<&str> = kept.iter().map(|entry| entry.split(' ').next().unwrap()).collect();
        covered.dedup();
        let trees = store.records().count() - ["compiled_functions", "changes"].len();
        assert_eq!(covered.len(), trees, "{covered:?}");
        write_tenant(&store, "ten_a");
        assert_eq!(everything(&store).len(), 2 * kept.len());

        assert!(store.delete_tenant("ten_a").unwrap());
        assert_eq!(everything(&store), kept);
        assert!(!store.delete_tenant("ten_a").unwrap(), "a second deletion finds nothing");
    }

    #[test]
    fn deleting_a_plugin_removes_its_records_and_no_other_plugins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let trees =
            [&store.plugins, &store.plugin_versions, &store.plugin_components, &store.plugin_kv, &store.plugin_logs];
        for name in ["wow", "wow2"] {
            store.plugins.insert(format!("t/{name}/"), &[][..]).unwrap();
            for tree in &trees[1..] {
                tree.insert(format!("t/{name}/1"), &[][..]).unwrap();
            }
        }
        assert!(store.delete_plugin("t", "wow").unwrap());
        for tree in trees {
            let keys: Vec<_> = tree.iter().keys().map(|k| String::from_utf8(k.unwrap().to_vec()).unwrap()).collect();
            assert!(keys.iter().all(|k| k.starts_with("t/wow2/")) && keys.len() == 1, "{keys:?}");
        }
        assert!(!store.delete_plugin("t", "wow").unwrap());
    }
}
