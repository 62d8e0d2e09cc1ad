//! Compiled artifacts as files in the data folder, one per plugin version and tier, named after
//! the version and its component's hash (`artifacts/<tenant>/<plugin>/<version>.<hash>.cwasm`,
//! `<version>.<hash>.baseline.cwasm` until the optimized one replaces it). A Python plugin's
//! artifact is about 40 MB: written as a file it costs one write, and at start wasmtime maps it
//! instead of copying it out of the database. The hash in the name means a file is never taken
//! for another upload's code: a plugin deleted and uploaded again under the same version number
//! (on this node, or on another node of a cluster) has new files.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use super::engine::Tier;

pub struct Artifacts {
    dir: PathBuf,
}

/// One version's code: its version key (`tenant/name/version`) and its component's SHA-256.
#[derive(Clone, Copy)]
pub struct Code<'a> {
    pub version_key: &'a str,
    pub sha256: &'a str,
}

impl Code<'_> {
    /// The file name's stem: the version key and the hash's first 16 digits.
    fn stem(&self) -> String {
        format!("{}.{}", self.version_key, &self.sha256[..16.min(self.sha256.len())])
    }
}

impl Artifacts {
    pub fn new(dir: PathBuf) -> Self {
        Artifacts { dir }
    }

    /// Where the artifact of `code` compiled at `tier` lives.
    pub fn path(&self, code: Code, tier: Tier) -> PathBuf {
        match tier {
            Tier::Baseline => self.dir.join(format!("{}.baseline.cwasm", code.stem())),
            Tier::Optimized => self.dir.join(format!("{}.cwasm", code.stem())),
        }
    }

    /// Writes an artifact durably: a temporary file, synced, renamed over the old one, and the
    /// folder synced, so a crash leaves either the old artifact or the new one whole.
    pub fn write(&self, code: Code, tier: Tier, artifact: &[u8]) -> std::io::Result<()> {
        let path = self.path(code, tier);
        let folder = path.parent().expect("a version key has a folder");
        std::fs::create_dir_all(folder)?;
        let partial = path.with_extension("cwasm.partial");
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(artifact)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)?;
        std::fs::File::open(folder)?.sync_all()
    }

    /// Removes the artifact of `code` at `tier`, if there is one.
    pub fn remove_file(&self, code: Code, tier: Tier) -> std::io::Result<()> {
        unless_missing(std::fs::remove_file(self.path(code, tier)))
    }

    /// Removes every artifact under a folder key: a plugin's `tenant/name/` or a tenant's
    /// `tenant/`.
    pub fn remove(&self, folder_key: &str) -> std::io::Result<()> {
        unless_missing(std::fs::remove_dir_all(self.dir.join(folder_key.trim_end_matches('/'))))
    }

    /// Removes the artifact files of a tenant's plugins (under `tenant/`) that `keep` does not
    /// list (a file being written, not yet renamed into place, stays). Answers how many went.
    pub fn prune(&self, tenant: &str, keep: &HashSet<PathBuf>) -> std::io::Result<usize> {
        let mut removed = 0;
        let Some(plugins) = read_dir(&self.dir.join(tenant))? else { return Ok(0) };
        for plugin in plugins {
            let Some(files) = read_dir(&plugin?.path())? else { continue };
            for file in files {
                let path = file?.path();
                if path.extension().is_some_and(|e| e == "cwasm") && !keep.contains(&path) {
                    unless_missing(std::fs::remove_file(path))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// A folder's entries, or `None` when it does not exist.
fn read_dir(path: &std::path::Path) -> std::io::Result<Option<std::fs::ReadDir>> {
    match std::fs::read_dir(path) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A removal's result, where what was to be removed being already gone is success.
fn unless_missing(removed: std::io::Result<()>) -> std::io::Result<()> {
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
