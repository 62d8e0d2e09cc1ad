//! The change feed: which tenant's configuration changed, for the other nodes on the database
//! to forget what they cached of it. Entries are keyed by when they were written (the writer's
//! clock), then the tenant, the writer and a sequence; they are pruned once every node has read
//! them. A backend shared by nodes also announces each one as it commits (`Written::Change`).

use jiff::Timestamp;

use super::{Store, StoreResult, keys};

/// A change as the feed holds it.
pub struct Change {
    pub key: Vec<u8>,
    pub node: String,
    pub tenant: String,
}

impl Store {
    /// Notes that `tenant`'s configuration changed on `node`.
    pub fn note_change(&self, at: Timestamp, node: &str, tenant: &str) -> StoreResult<()> {
        let sequence = self.generate_id()?;
        self.changes.insert(keys::change(at, tenant, node, sequence), [])?;
        Ok(())
    }

    /// The changes noted at or after `since`, oldest first.
    pub fn changes_since(&self, since: Timestamp) -> StoreResult<Vec<Change>> {
        let mut changes = Vec::new();
        for entry in self.changes.range(keys::change_prefix(since)..) {
            let (key, _) = entry?;
            if let Some((tenant, node)) = keys::parse_change(&key) {
                let (tenant, node) = (tenant.to_string(), node.to_string());
                changes.push(Change { key, node, tenant });
            }
        }
        Ok(changes)
    }

    /// Removes the changes noted before `before`.
    pub fn prune_changes(&self, before: Timestamp) -> StoreResult<()> {
        for key in self.changes.range(..keys::change_prefix(before)).keys() {
            self.changes.remove(key?)?;
        }
        Ok(())
    }
}
