//! How many events and customers each tenant keeps, counted in the transactions that add and
//! remove them (a `Tx` adds its changes up and writes each count once, as it ends), so a limit
//! on them is checked by reading one entry, not by counting records.

use std::collections::HashMap;

use super::tree::{Tree, TxTree};
use super::{Store, StoreResult, TxResult, keys};

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kept {
    Events,
    Customers,
}

impl Kept {
    fn name(self) -> &'static str {
        match self {
            Kept::Events => "events",
            Kept::Customers => "customers",
        }
    }
}

/// Changes to the counts made in one transaction, by tenant and what.
pub(super) type Changes = HashMap<(String, Kept), i64>;

fn decode(bytes: Option<super::Bytes>) -> u64 {
    bytes.and_then(|b| <[u8; 8]>::try_from(&b[..]).ok()).map_or(0, u64::from_be_bytes)
}

/// Adds `changes` to the counts in `usage`, inside the transaction.
pub(super) fn apply(usage: &TxTree, changes: &Changes) -> TxResult<()> {
    for ((tenant, kept), change) in changes.iter().filter(|(_, change)| **change != 0) {
        let key = keys::named(tenant, kept.name());
        let count = decode(usage.get(&key)?).saturating_add_signed(*change);
        usage.insert(&key, count.to_be_bytes())?;
    }
    Ok(())
}

/// Counts the events and customers of every tenant in the `events` and `customers` trees (keys
/// `tenant/id`) and writes the counts: the migration to the format that keeps them.
pub(super) fn count_all(events: &Tree, customers: &Tree, usage: &Tree) -> StoreResult<()> {
    let mut counts: HashMap<(String, Kept), i64> = HashMap::new();
    for (tree, kept) in [(events, Kept::Events), (customers, Kept::Customers)] {
        for key in tree.iter().keys() {
            let key = key?;
            let tenant = key.split(|b| *b == b'/').next().unwrap_or_default();
            *counts.entry((String::from_utf8_lossy(tenant).into_owned(), kept)).or_default() += 1;
        }
    }
    super::transaction(&[usage], |t| {
        for ((tenant, kept), count) in &counts {
            t[0].insert(keys::named(tenant, kept.name()), (*count as u64).to_be_bytes())?;
        }
        Ok(())
    })
}

impl Store {
    /// How many of `kept` the tenant keeps.
    pub fn kept(&self, tenant: &str, kept: Kept) -> StoreResult<u64> {
        Ok(decode(self.usage.get(keys::named(tenant, kept.name()))?))
    }
}
