//! Backups of an embedded installation: one compressed file holding the store at one instant
//! (`Store::snapshot`), the files of the data folder a server needs beside it (the admin token,
//! compiled plugin artifacts) and a manifest; and restoring one into a new data folder, refused
//! before anything is written when the file is damaged, truncated or from a newer release.
//!
//! The file is a deflate stream of: `KLAXON-BACKUP 1\n`, then frames, each a tag byte and its
//! fields (lengths big-endian): `T` a tree (name), `E` an entry of that tree (key, value), `F` a
//! file (path under the data folder, contents), and last `M` the manifest (JSON), whose
//! `sha256` covers every byte before it; then the SHA-256 of the compressed stream (32 bytes),
//! so that no byte of the file can change unseen.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{Bytes, Store, StoreError, Taken};

const MAGIC: &[u8] = b"KLAXON-BACKUP 1\n";

/// The files of the data folder a backup carries, besides the store: the platform admin token,
/// and the compiled plugin artifacts (a restored server loads them instead of compiling again,
/// when they fit its engine).
const FILES: &[&str] = &["admin-token", "artifacts"];

/// What a backup holds, written at its end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// The release that made it.
    pub klaxon: String,
    /// The store format of its records (`store::FORMAT` of that release).
    pub store_format: u32,
    pub created_at: Timestamp,
    /// Entries per tree.
    pub trees: BTreeMap<String, u64>,
    /// Files of the data folder, and their bytes.
    pub files: u64,
    pub file_bytes: u64,
    /// A number above every id the store gave.
    pub next_id: u64,
    /// How long the server's writes waited while the store was read.
    pub writes_held_ms: u64,
    /// SHA-256 of everything before the manifest, uncompressed.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is not a whole, undamaged backup.
    #[error("the backup is damaged or truncated: {0}")]
    Damaged(String),
    #[error("{0}")]
    Refused(String),
}

type Result<T> = std::result::Result<T, BackupError>;

/// Writes a backup of `store` (and of its data folder's files) to `out`; answers its manifest.
pub fn write(store: &Store, out: impl Write, now: Timestamp) -> Result<Manifest> {
    let compressed = Tee { inner: BufWriter::new(out), hash: Sha256::new() };
    let mut out = Frames { inner: DeflateEncoder::new(compressed, Compression::fast()), hash: Sha256::new() };
    out.put(MAGIC)?;
    let mut trees: BTreeMap<String, u64> = BTreeMap::new();
    let mut tree = String::new();
    let started = std::time::Instant::now();
    let taken = store.snapshot(|name, key, value| {
        if name != tree {
            tree = name.to_string();
            out.put(b"T")?;
            out.field(name.as_bytes())?;
        }
        *trees.entry(tree.clone()).or_default() += 1;
        out.put(b"E")?;
        out.field(key)?;
        out.field(value)
    })?;
    let writes_held_ms = started.elapsed().as_millis() as u64;
    let (mut files, mut file_bytes) = (0, 0);
    for (relative, path) in data_files(&store.dir)? {
        let contents = std::fs::read(&path)?;
        out.put(b"F")?;
        out.field(relative.as_bytes())?;
        out.field(&contents)?;
        files += 1;
        file_bytes += contents.len() as u64;
    }
    let manifest = Manifest {
        klaxon: env!("CARGO_PKG_VERSION").to_string(),
        store_format: crate::store::FORMAT,
        created_at: now,
        trees,
        files,
        file_bytes,
        next_id: taken.next_id,
        writes_held_ms,
        sha256: hex(&out.hash.clone().finalize()),
    };
    out.put(b"M")?;
    out.field(&serde_json::to_vec(&manifest).expect("a manifest serializes"))?;
    let Tee { inner: mut file, hash } = out.inner.finish()?;
    file.write_all(&hash.finalize())?;
    file.flush()?;
    Ok(manifest)
}

/// Reads a whole backup, checking it; answers its manifest.
pub fn verify(path: &Path) -> Result<Manifest> {
    read(path, |_| Ok(()))
}

/// Restores the backup at `from` into `data_dir`, which must be empty or absent: checked whole
/// first (nothing is written for a damaged file), then written; a failure while writing removes
/// what was written. Answers its manifest.
pub fn restore(from: &Path, data_dir: &Path, cache_bytes: u64) -> Result<Manifest> {
    if std::fs::read_dir(data_dir).map(|mut entries| entries.next().is_some()).unwrap_or(false) {
        return Err(BackupError::Refused(format!("{} is not empty: restore into a new folder", data_dir.display())));
    }
    let manifest = verify(from)?;
    let restored = (|| {
        std::fs::create_dir_all(data_dir)?;
        let store = Store::open(data_dir, cache_bytes)?;
        let (sender, entries) = std::sync::mpsc::sync_channel::<(String, Bytes, Bytes)>(1024);
        std::thread::scope(|scope| {
            let filling = scope.spawn(|| store.fill(entries.into_iter().map(Ok), Taken { next_id: manifest.next_id }));
            let read = read(from, |item| {
                match item {
                    Item::Entry { tree, key, value } => sender
                        .send((tree.to_string(), key, value))
                        .map_err(|_| StoreError::Refused("filling stopped".into()))?,
                    Item::File { path, contents } => write_file(&data_dir.join(path), &contents)?,
                }
                Ok(())
            });
            drop(sender);
            // Filling's own error first: reading stops when filling does.
            filling.join().expect("filling the store does not panic")?;
            read.map(drop)
        })?;
        store.upgrade_filled(manifest.store_format)?;
        store.flush_now()?;
        Ok::<_, BackupError>(())
    })();
    if let Err(e) = restored {
        let _ = std::fs::remove_dir_all(data_dir);
        return Err(e);
    }
    Ok(manifest)
}

/// One thing a backup holds.
enum Item<'a> {
    Entry { tree: &'a str, key: Bytes, value: Bytes },
    File { path: &'a str, contents: Bytes },
}

/// Reads the backup at `path`, calling `each` with what it holds, and checks it: its frames, its
/// checksum, its counts, and that this release can read its store format.
fn read(path: &Path, mut each: impl FnMut(Item) -> Result<()>) -> Result<Manifest> {
    let mut file = std::fs::File::open(path)?;
    let compressed_len =
        file.metadata()?.len().checked_sub(DIGEST).ok_or_else(|| BackupError::Damaged("it ends early".into()))?;
    let mut trailer = [0; DIGEST as usize];
    file.seek(SeekFrom::Start(compressed_len))?;
    file.read_exact(&mut trailer)?;
    file.rewind()?;
    let compressed = Tee { inner: BufReader::new(file).take(compressed_len), hash: Sha256::new() };
    let mut input = Hashed { inner: BufReader::new(DeflateDecoder::new(compressed)), hash: Sha256::new() };
    let mut magic = [0; MAGIC.len()];
    input.exact(&mut magic)?;
    if magic != MAGIC {
        return Err(BackupError::Damaged("it does not start as a Klaxon backup does".into()));
    }
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    let (mut files, mut file_bytes) = (0, 0);
    let mut tree: Option<String> = None;
    loop {
        let before = input.hash.clone();
        let mut tag = [0];
        input.exact(&mut tag)?;
        match tag[0] {
            b'T' => tree = Some(text(input.field()?)?),
            b'E' => {
                let name = tree.as_deref().ok_or_else(|| BackupError::Damaged("an entry before its tree".into()))?;
                let (key, value) = (input.field()?, input.field()?);
                *counted.entry(name.to_string()).or_default() += 1;
                each(Item::Entry { tree: name, key, value })?;
            }
            b'F' => {
                let path = text(input.field()?)?;
                if !is_data_file(&path) {
                    return Err(BackupError::Damaged(format!("a file outside the data folder's own: {path:?}")));
                }
                let contents = input.field()?;
                files += 1;
                file_bytes += contents.len() as u64;
                each(Item::File { path: &path, contents })?;
            }
            b'M' => {
                let manifest: Manifest = serde_json::from_slice(&input.field()?)
                    .map_err(|e| BackupError::Damaged(format!("its manifest cannot be read: {e}")))?;
                if hex(&before.finalize()) != manifest.sha256 {
                    return Err(BackupError::Damaged("its checksum does not match its contents".into()));
                }
                if manifest.trees != counted || (manifest.files, manifest.file_bytes) != (files, file_bytes) {
                    return Err(BackupError::Damaged("it holds other counts than its manifest says".into()));
                }
                match input.inner.read(&mut [0]) {
                    Ok(0) => {}
                    Ok(_) => return Err(BackupError::Damaged("something follows its manifest".into())),
                    Err(e) => return Err(BackupError::Damaged(e.to_string())),
                }
                // Every compressed byte, read or not by the decoder, against the file's last 32.
                let compressed = input.inner.get_mut().get_mut();
                std::io::copy(compressed, &mut std::io::sink()).map_err(|e| BackupError::Damaged(e.to_string()))?;
                if compressed.hash.clone().finalize()[..] != trailer {
                    return Err(BackupError::Damaged("its checksum does not match the file".into()));
                }
                if manifest.store_format > crate::store::FORMAT {
                    return Err(BackupError::Refused(format!(
                        "the backup holds store format {}, written by Klaxon {}; this release reads formats up to {}",
                        manifest.store_format,
                        manifest.klaxon,
                        crate::store::FORMAT
                    )));
                }
                return Ok(manifest);
            }
            other => return Err(BackupError::Damaged(format!("an unknown frame ({other:#04x})"))),
        }
    }
}

/// The data folder's files a backup carries: (path under the folder, path), in path order.
fn data_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, root, out)?;
            } else if path.extension().is_none_or(|e| e != "partial") {
                let relative = path.strip_prefix(root).expect("under the root").to_string_lossy().into_owned();
                out.push((relative, path));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for name in FILES {
        let path = dir.join(name);
        if path.is_file() {
            out.push((name.to_string(), path));
        } else {
            walk(&path, dir, &mut out)?;
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `path` names one of the data folder's files a backup carries (never outside it).
fn is_data_file(path: &str) -> bool {
    let path = Path::new(path);
    path.components().all(|c| matches!(c, Component::Normal(_)))
        && path.components().next().is_some_and(|first| FILES.iter().any(|f| first.as_os_str() == *f))
}

/// Writes a restored file, readable by its owner only (the admin token is a secret).
fn write_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn text(bytes: Bytes) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| BackupError::Damaged("a name that is not UTF-8".into()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The length of a SHA-256 digest.
const DIGEST: u64 = 32;

/// Bytes passing through, hashed: the compressed stream, whose SHA-256 ends the file.
struct Tee<T> {
    inner: T,
    hash: Sha256,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hash.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hash.update(&buf[..read]);
        Ok(read)
    }
}

/// The frames written, hashed as they go.
struct Frames<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Frames<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.inner.write_all(bytes)
    }

    /// A length (8 bytes) and the bytes.
    fn field(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.put(&(bytes.len() as u64).to_be_bytes())?;
        self.put(bytes)
    }
}

/// The frames read, hashed as they go.
struct Hashed<R: Read> {
    inner: R,
    hash: Sha256,
}

/// The longest field read: larger lengths are damage, not data (a component is at most tens of
/// megabytes, an artifact a few hundred).
const MAX_FIELD: u64 = 4 << 30;

impl<R: Read> Hashed<R> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => BackupError::Damaged("it ends early".into()),
            _ => BackupError::Damaged(e.to_string()),
        })?;
        self.hash.update(&*buf);
        Ok(())
    }

    fn field(&mut self) -> Result<Bytes> {
        let mut len = [0; 8];
        self.exact(&mut len)?;
        let len = u64::from_be_bytes(len);
        if len > MAX_FIELD {
            return Err(BackupError::Damaged(format!("a field of {len} bytes")));
        }
        let mut bytes = vec![0; len as usize];
        self.exact(&mut bytes)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use proptest::arbitrary::Arbitrary;

    use super::*;

    #[test]
    fn a_backup_restores_every_record_and_the_folder_s_files_into_a_new_folder() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Store::open(&data, 1 << 20).unwrap();
        store.tenants.put("ten_a", &serde_json::json!({ "id": "ten_a" })).unwrap();
        let artifact = data.join("artifacts/ten_a/p/1.abc.cwasm");
        std::fs::create_dir_all(artifact.parent().unwrap()).unwrap();
        std::fs::write(&artifact, b"compiled").unwrap();
        std::fs::write(artifact.with_extension("cwasm.partial"), b"half").unwrap();
        let file = dir.path().join("backup");
        let taken = write(&store, std::fs::File::create(&file).unwrap(), Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!((taken.files, taken.trees["tenants"]), (1, 1), "a file being written is left out");

        let restored = dir.path().join("restored");
        assert_eq!(restore(&file, &restored, 1 << 20).unwrap(), taken);
        assert_eq!(std::fs::read(restored.join("artifacts/ten_a/p/1.abc.cwasm")).unwrap(), b"compiled");
        let copy = Store::open(&restored, 1 << 20).unwrap();
        let tenant: serde_json::Value = copy.tenants.get("ten_a").unwrap().unwrap();
        assert_eq!(tenant["id"], "ten_a");
        assert!(copy.generate_id().unwrap() > taken.next_id, "ids go on above the backed-up ones");
    }

    proptest::proptest! {
        /// A backup file with bytes changed or cut short is refused with a reason, or (a change
        /// the checksums cannot see, never met) read whole; reading it never panics.
        #[test]
        fn a_changed_backup_file_is_refused_and_reading_it_never_panics(
            edits in proptest::collection::vec((proptest::sample::Index::arbitrary(), 0u8..=255), 0..4),
            cut in proptest::option::of(proptest::sample::Index::arbitrary()),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("data"), 1 << 20).unwrap();
            store.tenants.put("ten_a", &serde_json::json!({ "id": "ten_a" })).unwrap();
            let mut bytes = Vec::new();
            let taken = write(&store, &mut bytes, Timestamp::UNIX_EPOCH).unwrap();
            let original = bytes.clone();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            let file = dir.path().join("changed");
            std::fs::write(&file, &bytes).unwrap();
            match verify(&file) {
                Ok(manifest) => proptest::prop_assert!(bytes == original && manifest == taken),
                Err(e) => proptest::prop_assert!(bytes != original, "{e}"),
            }
        }
    }

    #[test]
    fn only_the_data_folder_s_own_files_are_restored() {
        for (path, allowed) in [
            ("admin-token", true),
            ("artifacts/t/p/1.x.cwasm", true),
            ("artifacts/../../etc/passwd", false),
            ("/etc/passwd", false),
            ("db/conf", false),
            ("address", false),
        ] {
            assert_eq!(is_data_file(path), allowed, "{path}");
        }
    }
}
