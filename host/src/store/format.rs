//! The version of what a database holds. It is recorded in the `meta` tree; opening a database
//! brings an older format up to this release's one step at a time (each step logged and safe to
//! run again, the version recorded after each, so a crash mid-migration resumes where it
//! stopped), and refuses a newer one rather than misread it.

use std::sync::Arc;

use super::backend::Backend;
use super::tree::Tree;
use super::{StoreError, StoreResult};

/// The format this release reads and writes.
pub const FORMAT: u32 = 2;

/// Where the format is recorded, in the `meta` tree.
const FORMAT_KEY: &str = "format";

/// A step from format `to - 1` to `to`.
struct Step {
    to: u32,
    what: &'static str,
    run: fn(&Arc<dyn Backend>) -> StoreResult<()>,
}

/// Every step, in order. A database written before formats were recorded is format 0.
const STEPS: &[Step] = &[
    Step {
        to: 1,
        what: "remove the trees of earlier releases (plugin artifacts, now files; the compile cache \
               before its entries carried their last use)",
        run: |db| ["plugin_artifacts", "compile_cache"].into_iter().try_for_each(|tree| db.drop_tree(tree)),
    },
    Step {
        to: 2,
        what: "count each tenant's events and customers (the usage limits read the counts)",
        run: |db| {
            let gate = Default::default();
            let tree = |name| Tree::open(db, name, &gate);
            super::usage::count_all(&tree("events")?, &tree("customers")?, &tree("usage")?)
        },
    },
];

// The steps lead to this release's format.
const _: () = assert!(STEPS[STEPS.len() - 1].to == FORMAT);

/// The format `meta` records (0 when none is: a database of an earlier release, or a new one).
pub(super) fn stored(meta: &Tree) -> StoreResult<u32> {
    match meta.get(FORMAT_KEY)? {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| super::corrupt(FORMAT_KEY, "a format number")),
    }
}

/// Brings the database up to `FORMAT`, or refuses it when it is newer.
pub(super) fn upgrade(db: &Arc<dyn Backend>, meta: &Tree) -> StoreResult<()> {
    upgrade_with(db, meta, STEPS, FORMAT)
}

/// Brings records of format `format` that were written into a database of this release's
/// format (a restored backup of an earlier release) up to `FORMAT`.
pub(super) fn upgrade_records(db: &Arc<dyn Backend>, meta: &Tree, format: u32) -> StoreResult<()> {
    if format < FORMAT {
        meta.insert(FORMAT_KEY, format.to_string())?;
    }
    upgrade(db, meta)
}

fn upgrade_with(db: &Arc<dyn Backend>, meta: &Tree, steps: &[Step], current: u32) -> StoreResult<()> {
    let found = stored(meta)?;
    if found > current {
        return Err(StoreError::Refused(format!(
            "the database holds store format {found}, written by a newer Klaxon; this release reads formats up \
             to {current}: run that release (or a later one), or restore a backup into a new data folder"
        )));
    }
    for step in steps.iter().filter(|step| step.to > found) {
        tracing::info!(from = step.to - 1, to = step.to, step = step.what, "migrating the store");
        (step.run)(db)?;
        meta.insert(FORMAT_KEY, step.to.to_string())?;
        db.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::store::Store;

    static RUNS: AtomicU32 = AtomicU32::new(0);

    fn open(dir: &std::path::Path) -> StoreResult<Store> {
        Store::open(dir, 1 << 20)
    }

    #[test]
    fn an_earlier_database_is_migrated_once_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        // An earlier release's database: no format recorded, and a tree it kept.
        {
            let db: Arc<dyn Backend> = Arc::new(crate::store::embedded::Sled::open(dir.path(), 1 << 20).unwrap());
            let legacy = Tree::open(&db, "compile_cache", &Default::default()).unwrap();
            legacy.insert("k", "v").unwrap();
            db.flush().unwrap();
        }
        let store = open(dir.path()).unwrap();
        assert_eq!(stored(&store.meta).unwrap(), FORMAT);
        assert!(
            Tree::open(&store.db, "compile_cache", &store.gate).unwrap().is_empty().unwrap(),
            "the legacy tree went"
        );
        drop(store);

        // A newer release's database is refused, naming both formats.
        let store = open(dir.path()).unwrap();
        store.meta.insert(FORMAT_KEY, (FORMAT + 1).to_string()).unwrap();
        store.flush_now().unwrap();
        drop(store);
        let Err(StoreError::Refused(message)) = open(dir.path()) else { panic!("a newer format is refused") };
        assert!(message.contains(&format!("format {}", FORMAT + 1)), "{message}");
        assert!(message.contains(&format!("up to {FORMAT}")), "{message}");
    }

    #[test]
    fn a_migration_that_stopped_midway_resumes_at_the_step_it_did_not_finish() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        store.meta.remove(FORMAT_KEY).unwrap();
        let steps = [
            Step { to: 1, what: "one", run: |_| Ok(()) },
            Step {
                to: 2,
                what: "two, which fails the first time",
                run: |_| match RUNS.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(StoreError::Backend("the disk went away".into())),
                    _ => Ok(()),
                },
            },
            Step { to: 3, what: "three", run: |_| Ok(()) },
        ];
        assert!(upgrade_with(&store.db, &store.meta, &steps, 3).is_err());
        assert_eq!(stored(&store.meta).unwrap(), 1, "the first step is done and recorded");
        upgrade_with(&store.db, &store.meta, &steps, 3).unwrap();
        assert_eq!(stored(&store.meta).unwrap(), 3);
        assert_eq!(RUNS.load(Ordering::SeqCst), 2, "step two ran again, step one did not");
        upgrade_with(&store.db, &store.meta, &steps, 3).unwrap();
        assert_eq!(RUNS.load(Ordering::SeqCst), 2, "a database at the current format runs no step");
    }

    #[test]
    fn records_of_an_earlier_format_restored_here_are_brought_up_to_this_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        // A backup of format 1 kept no counts: restored, its events and customers are counted.
        let entry = |tree: &str, key: &str| Ok((tree.to_string(), key.as_bytes().to_vec(), b"{}".to_vec()));
        let entries = [entry("customers", "acme/c1"), entry("events", "acme/e1"), entry("events", "acme/e2")];
        store.fill(entries.into_iter(), crate::store::Taken { next_id: 1 }).unwrap();
        assert_eq!(store.kept("acme", crate::store::Kept::Events).unwrap(), 0, "nothing counted them yet");
        store.upgrade_filled(1).unwrap();
        assert_eq!(stored(&store.meta).unwrap(), FORMAT);
        assert_eq!(store.kept("acme", crate::store::Kept::Events).unwrap(), 2);
        assert_eq!(store.kept("acme", crate::store::Kept::Customers).unwrap(), 1);
    }
}
