//! Compiled artifacts as files in the data folder, one per plugin version
//! (`artifacts/<tenant>/<plugin>/<version>.cwasm`). A Python plugin's artifact is about 40 MB:
//! written as a file it costs one write, and at start wasmtime maps it instead of copying it out
//! of the database.

use std::io::Write;
use std::path::PathBuf;

pub struct Artifacts {
    dir: PathBuf,
}

impl Artifacts {
    pub fn new(dir: PathBuf) -> Self {
        Artifacts { dir }
    }

    /// Where the artifact of a version key (`tenant/name/version`) lives.
    pub fn path(&self, version_key: &str) -> PathBuf {
        self.dir.join(format!("{version_key}.cwasm"))
    }

    /// Writes an artifact durably: a temporary file, synced, renamed over the old one, and the
    /// folder synced, so a crash leaves either the old artifact or the new one whole.
    pub fn write(&self, version_key: &str, artifact: &[u8]) -> std::io::Result<()> {
        let path = self.path(version_key);
        let folder = path.parent().expect("a version key has a folder");
        std::fs::create_dir_all(folder)?;
        let partial = path.with_extension("cwasm.partial");
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(artifact)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)?;
        std::fs::File::open(folder)?.sync_all()
    }

    /// Removes every artifact under a folder key: a plugin's `tenant/name/` or a tenant's
    /// `tenant/`.
    pub fn remove(&self, folder_key: &str) -> std::io::Result<()> {
        match std::fs::remove_dir_all(self.dir.join(folder_key.trim_end_matches('/'))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
