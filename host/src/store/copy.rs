//! Moving an installation from one database to another (`klaxon migrate --from --to`): every
//! record of every tree copied into a store that holds none, then counted again there.

use super::tree::{Tree, transaction};
use super::{Store, StoreError, StoreResult};

/// Entries written per transaction while copying.
const CHUNK: usize = 1000;

/// What a copy moved (or, in a dry run, would move): entries per tree.
#[derive(Debug)]
pub struct Copied {
    pub trees: Vec<(String, u64)>,
}

impl Store {
    /// Copies every record into `target`, which must hold none, and checks that `target` then
    /// holds as many per tree; with `dry_run`, only counts what it would copy. Ids `target`
    /// gives from then on are above every id this store gave.
    pub fn copy_into(&self, target: &Store, dry_run: bool) -> StoreResult<Copied> {
        for tree in &target.every_tree {
            if !tree.is_empty()? {
                return Err(StoreError::Refused(format!("the target is not empty: `{}` holds records", tree.name())));
            }
        }
        let mut trees = Vec::new();
        for (from, to) in self.every_tree.iter().zip(&target.every_tree) {
            let copied = if dry_run { count(from)? } else { copy(from, to)? };
            trees.push((from.name().to_string(), copied));
        }
        if !dry_run {
            for ((name, copied), to) in trees.iter().zip(&target.every_tree) {
                let held = count(to)?;
                if held != *copied {
                    return Err(StoreError::Refused(format!(
                        "`{name}`: copied {copied} entries, the target holds {held}"
                    )));
                }
            }
            target.db.ids_above(self.db.generate_id()?)?;
        }
        Ok(Copied { trees })
    }
}

fn count(tree: &Tree) -> StoreResult<u64> {
    tree.iter().try_fold(0, |n, entry| entry.map(|_| n + 1))
}

fn copy(from: &Tree, to: &Tree) -> StoreResult<u64> {
    let mut copied = 0;
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut entries = from.iter().peekable();
    while entries.peek().is_some() {
        chunk.clear();
        for entry in entries.by_ref().take(CHUNK) {
            chunk.push(entry?);
        }
        transaction(&[to], |t| chunk.iter().try_for_each(|(key, value)| t[0].insert(key, value)))?;
        copied += chunk.len() as u64;
    }
    Ok(copied)
}
