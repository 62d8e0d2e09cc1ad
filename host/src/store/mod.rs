//! Durable storage: one sled database with a tree per kind of record. Records are JSON, except
//! plugin binaries and key-value entries, which are raw bytes.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record {key:?} cannot be read: {source}")]
    Corrupt { key: String, source: serde_json::Error },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database and its trees.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// tenant id -> `Tenant`
    pub tenants: sled::Tree,
    /// key id -> `ApiKey`
    pub api_keys: sled::Tree,
    /// `tenant/name` -> `Plugin`
    pub plugins: sled::Tree,
    /// `tenant/name/version` -> `PluginVersion`
    pub plugin_versions: sled::Tree,
    /// `tenant/name/version` -> the component as uploaded
    pub plugin_components: sled::Tree,
    /// `tenant/name/version` -> the compiled artifact, so a restart does not compile again
    pub plugin_artifacts: sled::Tree,
    /// `tenant/name/` + scope key + key -> bytes a plugin stored
    pub plugin_kv: sled::Tree,
    /// `tenant/customer id` -> `Customer`
    pub customers: sled::Tree,
    /// `tenant/event id` -> `Event`; the key is the idempotency check
    pub events: sled::Tree,
    /// `tenant/rule id` -> `Rule`
    pub rules: sled::Tree,
}

impl Store {
    pub fn open(dir: &Path) -> StoreResult<Self> {
        let db = sled::Config::new().path(dir.join("db")).open()?;
        Ok(Store {
            tenants: db.open_tree("tenants")?,
            api_keys: db.open_tree("api_keys")?,
            plugins: db.open_tree("plugins")?,
            plugin_versions: db.open_tree("plugin_versions")?,
            plugin_components: db.open_tree("plugin_components")?,
            plugin_artifacts: db.open_tree("plugin_artifacts")?,
            plugin_kv: db.open_tree("plugin_kv")?,
            customers: db.open_tree("customers")?,
            events: db.open_tree("events")?,
            rules: db.open_tree("rules")?,
            db,
        })
    }

    /// Makes every write so far durable. Handlers call it before answering a change.
    pub async fn flush(&self) -> StoreResult<()> {
        self.db.flush_async().await?;
        Ok(())
    }
}

pub fn get_json<T: DeserializeOwned>(tree: &sled::Tree, key: &str) -> StoreResult<Option<T>> {
    tree.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

pub fn put_json<T: Serialize>(tree: &sled::Tree, key: &str, value: &T) -> StoreResult<()> {
    let bytes = serde_json::to_vec(value).expect("records serialize to JSON");
    tree.insert(key, bytes)?;
    Ok(())
}

/// Every record whose key starts with `prefix`, in key order.
pub fn scan_json<T: DeserializeOwned>(tree: &sled::Tree, prefix: &str) -> StoreResult<Vec<T>> {
    tree.scan_prefix(prefix)
        .map(|entry| {
            let (key, bytes) = entry?;
            decode(&String::from_utf8_lossy(&key), &bytes)
        })
        .collect()
}

/// Removes every entry whose key starts with `prefix`.
pub fn remove_prefix(tree: &sled::Tree, prefix: impl AsRef<[u8]>) -> StoreResult<()> {
    for key in tree.scan_prefix(prefix).keys() {
        tree.remove(key?)?;
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt { key: key.to_string(), source })
}
