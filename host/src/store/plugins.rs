//! Plugins: their records, versions and uploaded components, the key-value entries they keep,
//! the lines they log, and the compiled-function cache all uploads share.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::tree::Tree;
use super::{Store, StoreResult, decode, transaction};

/// `tenant/name/`: names a plugin, and starts the ids of its versions.
pub fn plugin_id(tenant: &str, name: &str) -> String {
    format!("{tenant}/{name}/")
}

/// `tenant/name/version`: names one version of a plugin (versions sort by number).
pub fn version_id(tenant: &str, name: &str, version: u32) -> String {
    format!("{}{version:010}", plugin_id(tenant, name))
}

/// The plugin a version id names: its id.
pub fn plugin_of_version(version_id: &str) -> &str {
    &version_id[..=version_id.rfind('/').unwrap_or(0)]
}

/// Where one (tenant, plugin, scope key)'s key-value entries live, so a plugin only ever sees
/// its own scope.
#[derive(Clone)]
pub struct KvScope {
    tree: Tree,
    prefix: Vec<u8>,
}

impl KvScope {
    /// What tells this scope from every other.
    pub fn id(&self) -> &[u8] {
        &self.prefix
    }

    fn key(&self, key: &str) -> Vec<u8> {
        [&self.prefix[..], key.as_bytes()].concat()
    }

    pub fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.tree.get(self.key(key))
    }

    pub fn set(&self, key: &str, value: Vec<u8>) -> StoreResult<()> {
        self.tree.insert(self.key(key), value)?;
        Ok(())
    }

    pub fn remove(&self, key: &str) -> StoreResult<()> {
        self.tree.remove(self.key(key))?;
        Ok(())
    }
}

/// Entries of bytes by bytes (the compiled-function cache).
#[derive(Clone, Debug)]
pub struct Blobs(pub(super) Tree);

impl Blobs {
    pub fn get(&self, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        self.0.get(key)
    }

    /// Writes an entry; answers what it replaced.
    pub fn insert(&self, key: &[u8], value: Vec<u8>) -> StoreResult<Option<Vec<u8>>> {
        self.0.insert(key, value)
    }

    pub fn remove(&self, key: &[u8]) -> StoreResult<()> {
        self.0.remove(key)?;
        Ok(())
    }

    /// Every entry, in key order; entries that cannot be read are skipped.
    pub fn entries(&self) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + use<> {
        self.0.iter().filter_map(Result::ok)
    }
}

impl Store {
    pub fn plugin<T: DeserializeOwned>(&self, tenant: &str, name: &str) -> StoreResult<Option<T>> {
        self.plugin_by_id(&plugin_id(tenant, name))
    }

    /// A plugin by its id (`plugin_id`).
    pub fn plugin_by_id<T: DeserializeOwned>(&self, id: &str) -> StoreResult<Option<T>> {
        self.plugins.get(id)?.map(|bytes| decode(id, &bytes)).transpose()
    }

    pub fn put_plugin<T: Serialize>(&self, tenant: &str, name: &str, plugin: &T) -> StoreResult<()> {
        self.plugins.insert(plugin_id(tenant, name), serde_json::to_vec(plugin).expect("plugins serialize"))?;
        Ok(())
    }

    /// The tenant's plugins, by name.
    pub fn plugins<T: DeserializeOwned>(&self, tenant: &str) -> StoreResult<Vec<T>> {
        scan(&self.plugins, &format!("{tenant}/"))
    }

    /// Every tenant's plugins, with their tenant.
    pub fn every_plugin<T: DeserializeOwned>(&self) -> StoreResult<Vec<(String, T)>> {
        self.plugins
            .iter()
            .map(|entry| {
                let (key, bytes) = entry?;
                let key = String::from_utf8_lossy(&key);
                Ok((key.split('/').next().unwrap_or_default().to_string(), decode(&key, &bytes)?))
            })
            .collect()
    }

    /// A plugin's versions, oldest first.
    pub fn plugin_versions<T: DeserializeOwned>(&self, tenant: &str, name: &str) -> StoreResult<Vec<T>> {
        scan(&self.plugin_versions, &plugin_id(tenant, name))
    }

    /// A version by its id (`version_id`).
    pub fn plugin_version<T: DeserializeOwned>(&self, version_id: &str) -> StoreResult<Option<T>> {
        self.plugin_versions.get(version_id)?.map(|bytes| decode(version_id, &bytes)).transpose()
    }

    /// The component a version was uploaded as.
    pub fn plugin_component(&self, version_id: &str) -> StoreResult<Option<Vec<u8>>> {
        self.plugin_components.get(version_id)
    }

    /// Keeps a new version with its component, and the plugin record pointing at it, in one
    /// transaction.
    pub fn put_plugin_version<P: Serialize, V: Serialize>(
        &self,
        tenant: &str,
        name: &str,
        plugin: &P,
        version: (u32, &V),
        component: &[u8],
    ) -> StoreResult<()> {
        let id = version_id(tenant, name, version.0);
        let plugin = serde_json::to_vec(plugin).expect("plugins serialize");
        let version = serde_json::to_vec(version.1).expect("versions serialize");
        transaction(&[&self.plugins, &self.plugin_versions, &self.plugin_components], |t| {
            t[2].insert(&id, component)?;
            t[1].insert(&id, version.as_slice())?;
            t[0].insert(plugin_id(tenant, name), plugin.as_slice())?;
            Ok(())
        })
    }

    /// The key-value entries of (tenant, plugin, scope key). The scope key is length-prefixed,
    /// so no scope key can reach into another's entries.
    pub fn plugin_kv(&self, tenant: &str, plugin: &str, scope_key: &str) -> KvScope {
        let prefix =
            [plugin_id(tenant, plugin).as_bytes(), &(scope_key.len() as u32).to_be_bytes(), scope_key.as_bytes()]
                .concat();
        KvScope { tree: self.plugin_kv.clone(), prefix }
    }

    /// Keeps a plugin's log line number `n`.
    pub fn put_plugin_log<T: Serialize>(&self, plugin_id: &str, n: u64, line: &T) -> StoreResult<()> {
        self.plugin_logs.insert(log_key(plugin_id, n), serde_json::to_vec(line).expect("log lines serialize"))?;
        Ok(())
    }

    pub fn remove_plugin_log(&self, plugin_id: &str, n: u64) -> StoreResult<()> {
        self.plugin_logs.remove(log_key(plugin_id, n))?;
        Ok(())
    }

    /// A plugin's log lines, newest first.
    pub fn plugin_logs_newest_first<T: DeserializeOwned>(
        &self,
        plugin_id: &str,
    ) -> impl Iterator<Item = StoreResult<T>> + use<T> {
        self.plugin_logs.scan_prefix(plugin_id.as_bytes()).rev().map(|entry| {
            let (key, bytes) = entry?;
            decode(&String::from_utf8_lossy(&key), &bytes)
        })
    }

    /// The number of a plugin's newest log line.
    pub fn last_plugin_log(&self, plugin_id: &str) -> StoreResult<Option<u64>> {
        let Some((key, _)) = self.plugin_logs.scan_prefix(plugin_id.as_bytes()).next_back().transpose()? else {
            return Ok(None);
        };
        Ok(key[plugin_id.len()..].try_into().ok().map(u64::from_be_bytes))
    }

    /// The compiled-function cache.
    pub fn compiled_functions(&self) -> Blobs {
        Blobs(self.compiled_functions.clone())
    }
}

fn log_key(plugin_id: &str, n: u64) -> Vec<u8> {
    [plugin_id.as_bytes(), &n.to_be_bytes()].concat()
}

fn scan<T: DeserializeOwned>(tree: &Tree, prefix: &str) -> StoreResult<Vec<T>> {
    tree.scan_prefix(prefix)
        .map(|entry| {
            let (key, bytes) = entry?;
            decode(&String::from_utf8_lossy(&key), &bytes)
        })
        .collect()
}
