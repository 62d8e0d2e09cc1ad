//! The whole store at one instant, and a new store filled from such a copy: what backups are
//! made of (backup files give them a format).

use super::backend::Bytes;
use super::tree::{Tree, close, transaction};
use super::{Store, StoreError, StoreResult};

/// Entries written per transaction while filling.
const CHUNK: usize = 1000;

/// Trees left out of a snapshot: caches that fill again by themselves.
const CACHES: &[&str] = &["compiled_functions"];

/// What a restore needs besides the entries.
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    /// A number above every id the store gave.
    pub next_id: u64,
}

impl Store {
    /// Calls `each` with every entry of every tree but caches (tree name, key, value), in tree
    /// and key order, holding every write of this store meanwhile, so the entries are what the
    /// database held at one instant: writers wait, readers do not. Refused for a database that
    /// other processes write too (this process cannot hold their writes).
    pub fn snapshot(&self, mut each: impl FnMut(&str, &[u8], &[u8]) -> std::io::Result<()>) -> StoreResult<Taken> {
        if self.membership().is_some() {
            return Err(StoreError::Refused(
                "a database shared by several nodes is copied with its own tools (for PostgreSQL, pg_dump \
                 or a base backup), not by one node"
                    .into(),
            ));
        }
        let _closed = close(&self.gate);
        for tree in self.every_tree.iter().filter(|tree| !CACHES.contains(&tree.name())) {
            for entry in tree.iter() {
                let (key, value) = entry?;
                each(tree.name(), &key, &value).map_err(|e| StoreError::Backend(format!("writing the copy: {e}")))?;
            }
        }
        Ok(Taken { next_id: self.db.generate_id()? })
    }

    /// Fills this store, whose trees of records must be empty, with `entries` (tree name, key,
    /// value; a tree's entries together), then gives ids above `taken.next_id`. A tree this
    /// release does not open is made (an older format's, for its migration to read).
    pub fn fill(
        &self,
        entries: impl Iterator<Item = StoreResult<(String, Bytes, Bytes)>>,
        taken: Taken,
    ) -> StoreResult<u64> {
        for tree in self.records() {
            if !tree.is_empty()? {
                return Err(StoreError::Refused(format!("the store is not empty: `{}` holds records", tree.name())));
            }
        }
        let mut written = 0;
        let mut chunk: Vec<(Bytes, Bytes)> = Vec::with_capacity(CHUNK);
        let mut current: Option<Tree> = None;
        for entry in entries {
            let (name, key, value) = entry?;
            if current.as_ref().is_none_or(|tree| tree.name() != name) || chunk.len() == CHUNK {
                if let Some(tree) = &current {
                    written += write(tree, &mut chunk)?;
                }
                current = Some(self.tree_named(&name)?);
            }
            chunk.push((key, value));
        }
        if let Some(tree) = &current {
            written += write(tree, &mut chunk)?;
        }
        self.db.ids_above(taken.next_id)?;
        self.db.flush()?;
        Ok(written)
    }

    /// Brings what `fill` wrote, records of store format `format`, up to this release's.
    pub fn upgrade_filled(&self, format: u32) -> StoreResult<()> {
        super::format::upgrade_records(&self.db, &self.meta, format)
    }

    fn tree_named(&self, name: &str) -> StoreResult<Tree> {
        match self.every_tree.iter().find(|tree| tree.name() == name) {
            Some(tree) => Ok(tree.clone()),
            None => Tree::open(&self.db, name, &self.gate),
        }
    }
}

fn write(tree: &Tree, chunk: &mut Vec<(Bytes, Bytes)>) -> StoreResult<u64> {
    transaction(&[tree], |t| chunk.iter().try_for_each(|(key, value)| t[0].insert(key, value)))?;
    let written = chunk.len() as u64;
    chunk.clear();
    Ok(written)
}
