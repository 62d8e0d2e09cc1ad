//! Moving an installation from one database to another (`klaxon migrate --from --to`): every
//! record of every tree copied into a store that holds none, then counted again there. And a
//! sandbox: a throwaway embedded store holding what one tenant's rules read (its record, its
//! customers, its plugins), where a backtest replays history without touching the real one.

use std::path::Path;

use super::backend::Bytes;
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
        let pairs: Vec<(&Tree, &Tree)> = self.records().zip(target.records()).collect();
        for (_, to) in &pairs {
            if !to.is_empty()? {
                return Err(StoreError::Refused(format!("the target is not empty: `{}` holds records", to.name())));
            }
        }
        let mut trees = Vec::new();
        for (from, to) in &pairs {
            let copied = if dry_run { count(from)? } else { copy(from, to)? };
            trees.push((from.name().to_string(), copied));
        }
        if !dry_run {
            for ((name, copied), (_, to)) in trees.iter().zip(&pairs) {
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

impl Store {
    /// Opens an embedded store in `dir` (an empty folder) holding a copy of `tenant`'s record and
    /// customers, and with `plugins` its plugins (their versions and components, not their
    /// key-value entries: a plugin starts there with none).
    pub fn sandbox(&self, tenant: &str, dir: &Path, plugins: bool) -> StoreResult<Store> {
        let target = Store::open(dir, SANDBOX_CACHE_BYTES)?;
        if let Some(record) = self.tenants.0.get(tenant)? {
            target.tenants.0.insert(tenant, record)?;
        }
        let prefix = format!("{tenant}/");
        let mut trees = vec![(&self.customers, &target.customers)];
        if plugins {
            trees.extend([
                (&self.plugins, &target.plugins),
                (&self.plugin_versions, &target.plugin_versions),
                (&self.plugin_components, &target.plugin_components),
            ]);
        }
        for (from, to) in trees {
            copy_entries(from.scan_prefix(&prefix), to)?;
        }
        Ok(target)
    }
}

/// A sandbox's cache: it lives for one backtest.
const SANDBOX_CACHE_BYTES: u64 = 16 << 20;

fn count(tree: &Tree) -> StoreResult<u64> {
    tree.iter().try_fold(0, |n, entry| entry.map(|_| n + 1))
}

fn copy(from: &Tree, to: &Tree) -> StoreResult<u64> {
    copy_entries(from.iter(), to)
}

/// Writes `entries` into `to`, a chunk per transaction; answers how many.
fn copy_entries(entries: impl Iterator<Item = StoreResult<(Bytes, Bytes)>>, to: &Tree) -> StoreResult<u64> {
    let mut copied = 0;
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut entries = entries.peekable();
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
