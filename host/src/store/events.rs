//! A tenant's events and its catalogue of event types outside transactions (ingest keeps them
//! through `Tx`).

use jiff::Timestamp;
use serde::de::DeserializeOwned;

use super::backend::Bytes;
use super::usage::{self, Kept};
use super::{Store, StoreResult, corrupt, decode, keys, transaction};
use crate::records::Event;

/// Events removed per transaction when old ones are pruned.
const PRUNE_CHUNK: usize = 1000;

impl Store {
    /// The tenant's events from `since` on, in time order, each with the number of the ingest
    /// batch that kept it.
    pub fn events_since(
        &self,
        tenant: &str,
        since: Timestamp,
    ) -> impl Iterator<Item = StoreResult<(u64, Event)>> + use<> {
        let prefix = keys::named(tenant, "");
        let (events, tenant) = (self.events.clone(), tenant.to_string());
        self.events_by_time
            .range(keys::event_time(&tenant, since, "")..)
            .take_while(move |entry| entry.as_ref().map_or(true, |(key, _)| key.starts_with(&prefix)))
            .filter_map(move |entry| {
                let read = || -> StoreResult<Option<(u64, Event)>> {
                    let (key, batch) = entry?;
                    let batch = batch.as_slice().try_into().map_err(|_| corrupt(&key, "a batch number"))?;
                    let id = String::from_utf8_lossy(&key[tenant.len() + 1 + 8..]).into_owned();
                    let key = keys::record(&tenant, &id);
                    let Some(bytes) = events.get(&key)? else { return Ok(None) };
                    Ok(Some((u64::from_be_bytes(batch), decode(&key, &bytes)?)))
                };
                read().transpose()
            })
    }

    /// Removes the tenant's events from before `before`; answers how many. Each event and its
    /// place in time go together.
    pub fn prune_events(&self, tenant: &str, before: Timestamp) -> StoreResult<usize> {
        let start = keys::named(tenant, "");
        let end = keys::event_time(tenant, before, "");
        let mut pruned = 0;
        loop {
            let chunk: Vec<Bytes> = self
                .events_by_time
                .range(start.clone()..end.clone())
                .keys()
                .take(PRUNE_CHUNK)
                .collect::<Result<_, _>>()?;
            if chunk.is_empty() {
                return Ok(pruned);
            }
            transaction(&[&self.events, &self.events_by_time, &self.usage], |t| {
                for key in &chunk {
                    let id = String::from_utf8_lossy(&key[start.len() + 8..]);
                    t[0].remove(keys::record(tenant, &id))?;
                    t[1].remove(key)?;
                }
                let gone = [((tenant.to_string(), Kept::Events), -(chunk.len() as i64))];
                usage::apply(&t[2], &gone.into_iter().collect())
            })?;
            pruned += chunk.len();
        }
    }

    /// The tenant's event types as seen, by name: an entry per shard of the catalogue, those of
    /// one type one after another.
    pub fn event_types<T: DeserializeOwned>(&self, tenant: &str) -> StoreResult<Vec<(String, T)>> {
        let prefix = keys::named(tenant, "");
        self.event_types
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, bytes) = entry?;
                let name = keys::event_type_name(&key[prefix.len()..]);
                let stats = decode(&name, &bytes)?;
                Ok((name, stats))
            })
            .collect()
    }
}
