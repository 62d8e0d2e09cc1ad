//! The modules in layers, top to bottom: data flows down (`api → ingest → alerts →
//! notifications → delivery`, plugins beside, shared records and the store below), and a module
//! never imports one above it. The test reads the sources and refuses an upward import.

use std::path::{Path, PathBuf};

/// Top first. A module may import the ones after it.
const LAYERS: &[&str] = &[
    "server",
    "console",
    "api",
    "backtests",
    "backup",
    "config",
    "ingest",
    "alerts",
    "cohorts",
    "notifications",
    "delivery",
    "channels",
    "recipients",
    "plugins",
    "rules",
    "tenants",
    "cluster",
    "metrics",
    "time_intervals",
    "error",
    "store",
    "records",
    "series",
    "clock",
    "context",
    "duration",
    "ids",
];

/// Files that are not modules of a layer: the crate root, the binary (`bin/klaxon/`, a client of
/// the library) and this check.
const OUTSIDE: &[&str] = &["lib", "bin", "layers"];

fn rank(module: &str) -> usize {
    LAYERS.iter().position(|m| *m == module).unwrap_or_else(|| panic!("module `{module}` is not in LAYERS"))
}

/// The top-level module a source file belongs to (`channels/render.rs` → `channels`).
fn module_of(relative: &Path) -> String {
    let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules a source names through `crate::`.
fn imported(source: &str) -> Vec<String> {
    source
        .match_indices("crate::")
        .map(|(i, m)| {
            let rest = &source[i + m.len()..];
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A source file of the crate: its path under `src/`, the module it belongs to, its text.
struct Source {
    relative: PathBuf,
    module: String,
    text: String,
}

fn crate_sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&root).unwrap().to_path_buf();
            Source { module: module_of(&relative), text: std::fs::read_to_string(&file).unwrap(), relative }
        })
        .collect()
}

#[test]
fn no_module_imports_one_above_it() {
    let mut upward = Vec::new();
    for Source { relative, module, text } in crate_sources() {
        if OUTSIDE.contains(&module.as_str()) {
            continue;
        }
        for target in imported(&text) {
            if target != module && rank(&target) < rank(&module) {
                upward.push(format!("{} imports {target}", relative.display()));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(upward.is_empty(), "imports of a higher layer:\n{}", upward.join("\n"));
}

/// Durable state has one door: each backend's file alone names its database's crate
/// (`store/embedded.rs` sled, `store/postgres.rs` its PostgreSQL client); the store's typed
/// operations use the backend traits, and the rest of the crate uses those operations.
#[test]
fn only_the_store_names_the_database() {
    const BACKENDS: &[(&str, &str)] = &[("store/embedded.rs", "sled"), ("store/postgres.rs", "tokio_postgres")];
    let mut naming = Vec::new();
    for Source { relative, module, text } in crate_sources() {
        if module == "layers" {
            continue;
        }
        for (file, name) in BACKENDS.iter().filter(|(file, _)| !relative.ends_with(file)) {
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if !code.starts_with("//") && code.contains(name) {
                    naming.push(format!("{}:{}: {code} (only {file} may name {name})", relative.display(), n + 1));
                }
            }
        }
    }
    assert!(naming.is_empty(), "a database named outside its backend:\n{}", naming.join("\n"));
}

/// Errors become HTTP answers only at the top: below `api`, each module has its own error (only
/// `error`, which defines it, names `ApiError`).
#[test]
fn only_the_api_answers_in_http() {
    let mut naming = Vec::new();
    for Source { relative, module, text } in crate_sources() {
        if OUTSIDE.contains(&module.as_str()) || module == "error" || rank(&module) <= rank("api") {
            continue;
        }
        if text.contains("ApiError") {
            naming.push(relative.display().to_string());
        }
    }
    assert!(naming.is_empty(), "below the API, modules naming ApiError:\n{}", naming.join("\n"));
}

#[test]
fn every_module_has_a_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&root).unwrap() {
        let module = module_of(Path::new(&entry.unwrap().file_name()));
        if !OUTSIDE.contains(&module.as_str()) {
            rank(&module);
        }
    }
}
