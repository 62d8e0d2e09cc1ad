//! Compiled artifacts as files in the data folder, one per plugin version and tier
//! (`artifacts/<tenant>/<plugin>/<version>.cwasm`, `<version>.baseline.cwasm` until the
//! optimized one replaces it). A Python plugin's artifact is about 40 MB: written as a file it
//! costs one write, and at start wasmtime maps it instead of copying it out of the database.

use std::io::Write;
use std::path::PathBuf;

use super::engine::Tier;

pub struct Artifacts {
    dir: PathBuf,
}

impl Artifacts {
    pub fn new(dir: PathBuf) -> Self {
        Artifacts { dir }
    }

    /// Where the artifact of a version key (`tenant/name/version`) compiled at `tier` lives.
    pub fn path(&self, version_key: &str, tier: Tier) -> PathBuf {
        match tier {
            Tier::Baseline => self.dir.join(format!("{version_key}.baseline.cwasm")),
            Tier::Optimized => self.dir.join(format!("{version_key}.cwasm")),
        }
    }

    /// Writes an artifact durably: a temporary file, synced, renamed over the old one, and the
    /// folder synced, so a crash leaves either the old artifact or the new one whole.
    pub fn write(&self, version_key: &str, tier: Tier, artifact: &[u8]) -> std::io::Result<()> {
        let path = self.path(version_key, tier);
        let folder = path.parent().expect("a version key has a folder");
        std::fs::create_dir_all(folder)?;
        let partial = path.with_extension("cwasm.partial");
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(artifact)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)?;
        std::fs::File::open(folder)?.sync_all()
    }

    /// Removes the artifact of a version at `tier`, if there is one.
    pub fn remove_file(&self, version_key: &str, tier: Tier) -> std::io::Result<()> {
        unless_missing(std::fs::remove_file(self.path(version_key, tier)))
    }

    /// Removes every artifact under a folder key: a plugin's `tenant/name/` or a tenant's
    /// `tenant/`.
    pub fn remove(&self, folder_key: &str) -> std::io::Result<()> {
        unless_missing(std::fs::remove_dir_all(self.dir.join(folder_key.trim_end_matches('/'))))
    }
}

/// A removal's result, where what was to be removed being already gone is success.
fn unless_missing(removed: std::io::Result<()>) -> std::io::Result<()> {
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
