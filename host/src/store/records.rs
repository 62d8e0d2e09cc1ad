//! Kinds of records kept as JSON by id: a `Table` for records of the whole installation (tenants,
//! keys, sessions), a `Collection` for a tenant's records of one kind. Their keys are built here
//! and nowhere else.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::backend::Bytes;
use super::queues::outbox_entry;
use super::tree::Tree;
use super::{Store, StoreResult, abort, decode, keys, transaction};
use crate::records::Event;

/// Records of one kind keyed by their id alone.
#[derive(Clone)]
pub struct Table(pub(super) Tree);

impl Table {
    pub fn get<T: DeserializeOwned>(&self, id: &str) -> StoreResult<Option<T>> {
        self.0.get(id)?.map(|bytes| decode(id, &bytes)).transpose()
    }

    pub fn put<T: Serialize>(&self, id: &str, record: &T) -> StoreResult<()> {
        self.0.insert(id, serde_json::to_vec(record).expect("records serialize to JSON"))?;
        Ok(())
    }

    /// Removes a record; `false` when there was none.
    pub fn delete(&self, id: &str) -> StoreResult<bool> {
        Ok(self.0.remove(id)?.is_some())
    }

    /// Every record with its id, in id order. A record that cannot be read is an error.
    pub fn entries<T: DeserializeOwned>(&self) -> StoreResult<Vec<(String, T)>> {
        self.0
            .iter()
            .map(|entry| {
                let (key, bytes) = entry?;
                let id = String::from_utf8_lossy(&key).into_owned();
                let record = decode(&id, &bytes)?;
                Ok((id, record))
            })
            .collect()
    }

    /// Every record, in id order.
    pub fn list<T: DeserializeOwned>(&self) -> StoreResult<Vec<T>> {
        Ok(self.entries()?.into_iter().map(|(_, record)| record).collect())
    }

    /// Every id, in order.
    pub fn ids(&self) -> StoreResult<Vec<String>> {
        self.0.iter().keys().map(|key| Ok(String::from_utf8_lossy(&key?).into_owned())).collect()
    }
}

/// A tenant's records of one kind, keyed `tenant/id`.
#[derive(Clone)]
pub struct Collection(pub(super) Tree);

impl Collection {
    fn key(tenant: &str, id: &str) -> String {
        keys::record(tenant, id)
    }

    pub fn get<T: DeserializeOwned>(&self, tenant: &str, id: &str) -> StoreResult<Option<T>> {
        self.get_bytes(tenant, id)?.map(|bytes| self.decode(tenant, id, &bytes)).transpose()
    }

    /// A record as stored, for a caller that keeps what it decoded and decodes again only
    /// when the bytes change.
    pub fn get_bytes(&self, tenant: &str, id: &str) -> StoreResult<Option<Vec<u8>>> {
        self.0.get(Self::key(tenant, id))
    }

    /// A record from its stored bytes.
    pub fn decode<T: DeserializeOwned>(&self, tenant: &str, id: &str, bytes: &[u8]) -> StoreResult<T> {
        decode(&Self::key(tenant, id), bytes)
    }

    pub fn put<T: Serialize>(&self, tenant: &str, id: &str, record: &T) -> StoreResult<()> {
        self.0.insert(Self::key(tenant, id), serde_json::to_vec(record).expect("records serialize to JSON"))?;
        Ok(())
    }

    /// Changes a record atomically (concurrent changes are applied one after the other);
    /// answers it when `change` said it changed. `None` when there is no such record.
    pub fn update<T: Serialize + DeserializeOwned>(
        &self,
        tenant: &str,
        id: &str,
        change: impl Fn(&mut T) -> bool,
    ) -> StoreResult<Option<T>> {
        self.change(None, tenant, id, change, |_| None)
    }

    /// `update`, putting the system event `report` makes of the changed record (if any) in
    /// `outbox` in the same transaction.
    fn change<T: Serialize + DeserializeOwned>(
        &self,
        outbox: Option<&Tree>,
        tenant: &str,
        id: &str,
        change: impl Fn(&mut T) -> bool,
        report: impl Fn(&T) -> Option<Event>,
    ) -> StoreResult<Option<T>> {
        let key = Self::key(tenant, id);
        let trees: Vec<&Tree> = std::iter::once(&self.0).chain(outbox).collect();
        transaction(&trees, |t| {
            let Some(bytes) = t[0].get(&key)? else { return Ok(None) };
            let mut record: T = decode(&key, &bytes).map_err(abort)?;
            if !change(&mut record) {
                return Ok(None);
            }
            t[0].insert(&key, serde_json::to_vec(&record).expect("records serialize to JSON"))?;
            if let (Some(outbox), Some(event)) = (t.get(1), report(&record)) {
                let (key, bytes) = outbox_entry(tenant, event, None);
                outbox.insert(key, bytes)?;
            }
            Ok(Some(record))
        })
    }

    /// The tenant's records, in id order.
    pub fn list<T: DeserializeOwned>(&self, tenant: &str) -> StoreResult<Vec<T>> {
        self.scan(tenant, false).collect()
    }

    /// The tenant's records from the last id to the first, read as the caller goes (ids that
    /// sort by time give the newest first).
    pub fn newest_first<T: DeserializeOwned>(&self, tenant: &str) -> impl Iterator<Item = StoreResult<T>> {
        self.scan(tenant, true)
    }

    fn scan<T: DeserializeOwned>(&self, tenant: &str, reverse: bool) -> Box<dyn Iterator<Item = StoreResult<T>>> {
        let entries = self.0.scan_prefix(Self::key(tenant, ""));
        let decoded = |entry: StoreResult<(Bytes, Bytes)>| {
            let (key, bytes) = entry?;
            decode(&String::from_utf8_lossy(&key), &bytes)
        };
        if reverse { Box::new(entries.rev().map(decoded)) } else { Box::new(entries.map(decoded)) }
    }

    /// Every tenant's records with their tenant, in key order.
    pub fn all<T: DeserializeOwned>(&self) -> StoreResult<Vec<(String, T)>> {
        self.0
            .iter()
            .map(|entry| {
                let (key, bytes) = entry?;
                let key = String::from_utf8_lossy(&key);
                let tenant = key.split('/').next().unwrap_or_default().to_string();
                Ok((tenant, decode(&key, &bytes)?))
            })
            .collect()
    }

    /// Removes a record; `false` when there was none.
    pub fn delete(&self, tenant: &str, id: &str) -> StoreResult<bool> {
        Ok(self.0.remove(Self::key(tenant, id))?.is_some())
    }
}

impl Store {
    /// Changes one of `records` atomically, as `Collection::update` does, and puts the system
    /// event `report` makes of the changed record (if any) in the outbox in the same
    /// transaction: a crash keeps both or neither.
    pub fn update_reporting<T: Serialize + DeserializeOwned>(
        &self,
        records: &Collection,
        tenant: &str,
        id: &str,
        change: impl Fn(&mut T) -> bool,
        report: impl Fn(&T) -> Option<Event>,
    ) -> StoreResult<Option<T>> {
        records.change(Some(&self.system_events), tenant, id, change, report)
    }
}
