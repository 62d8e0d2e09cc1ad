//! `klaxon plugins build`: builds a Rust plugin crate into WebAssembly components.
//!
//! Where rustup has the wasm32 target installed, this is the ordinary `cargo build --target`.
//! Where it has not (rustup cannot always download targets), it falls back to Debian's Rust
//! (`apt-get install rustc-web rust-web-src`), which builds the standard library for wasm32
//! from source with `-Zbuild-std`. Either way rustup's `wasm-component-ld` links the result
//! straight into a component.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The plugin crate, or a workspace of plugin crates.
    pub dir: PathBuf,
    /// Build for `wasm32-wasip2` (a component that imports WASI) instead of
    /// `wasm32-unknown-unknown` (a pure component).
    pub wasi: bool,
    /// Cargo's target folder; several plugin workspaces can share one to build `std` once.
    pub target_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("no toolchain can build {target}: {hint}")]
    NoToolchain { target: &'static str, hint: String },
    #[error("cargo build failed ({0}); its messages are above")]
    Cargo(std::process::ExitStatus),
    #[error("cargo built no component in {0}: is the crate type `cdylib`?")]
    NothingBuilt(PathBuf),
}

/// Debian's Rust, used when rustup lacks the target.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// Debian's wasi-libc, which the standard library for wasm32-wasip2 links against.
const DEBIAN_WASI_LIBC: &str = "/usr/lib/wasm32-wasi";

/// Builds every plugin crate under `options.dir` and returns the components' paths.
pub fn build(options: &BuildOptions) -> Result<Vec<PathBuf>, BuildError> {
    let target = if options.wasi { "wasm32-wasip2" } else { "wasm32-unknown-unknown" };
    let sysroot = capture("rustc", &["--print", "sysroot"])?;
    let host = capture("rustc", &["-vV"])?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .unwrap_or_else(|| "x86_64-unknown-linux-gnu".into());
    let tools = Path::new(&sysroot).join("lib/rustlib").join(&host).join("bin");
    let linker = tools.join("wasm-component-ld");
    if !linker.exists() {
        return Err(BuildError::NoToolchain {
            target,
            hint: format!("rustup's toolchain has no {} (Rust 1.82 or newer ships it)", linker.display()),
        });
    }

    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(&options.dir)
        .args(["build", "--release", "--message-format=json-render-diagnostics", "--target", target])
        .arg("--config")
        .arg(format!("target.{target}.linker={:?}", linker.display().to_string()))
        .stdout(Stdio::piped());
    if let Some(dir) = &options.target_dir {
        // Cargo runs in the plugin's folder: a relative path means relative to ours.
        let dir = std::path::absolute(dir).map_err(|source| BuildError::Spawn { program: "cargo".into(), source })?;
        cargo.arg("--target-dir").arg(dir);
    }
    let rustup_has_target = Path::new(&sysroot).join("lib/rustlib").join(target).join("lib").is_dir();
    if !rustup_has_target {
        if !Path::new(DEBIAN_RUSTC).exists() {
            return Err(BuildError::NoToolchain {
                target,
                hint: format!(
                    "install it with `rustup target add {target}`, or where rustup cannot download it, \
                     `apt-get install rustc-web rust-web-src`"
                ),
            });
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![tools.join("gcc-ld")];
        paths.extend(std::env::split_paths(&path));
        cargo
            .env("RUSTC", DEBIAN_RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("PATH", std::env::join_paths(paths).expect("PATH entries join"))
            .arg("-Zbuild-std=std,panic_abort");
        if options.wasi {
            cargo.env(
                format!("CARGO_TARGET_{}_RUSTFLAGS", target.to_uppercase().replace('-', "_")),
                format!("-L native={DEBIAN_WASI_LIBC}"),
            );
        }
    }

    let mut child = cargo.spawn().map_err(|source| BuildError::Spawn { program: "cargo".into(), source })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut components = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if message["reason"] == "compiler-artifact"
            && let Some(files) = message["filenames"].as_array()
        {
            components
                .extend(files.iter().filter_map(|f| f.as_str()).filter(|f| f.ends_with(".wasm")).map(PathBuf::from));
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn { program: "cargo".into(), source })?;
    if !status.success() {
        return Err(BuildError::Cargo(status));
    }
    if components.is_empty() {
        return Err(BuildError::NothingBuilt(options.dir.clone()));
    }
    Ok(components)
}

fn capture(program: &str, args: &[&str]) -> Result<String, BuildError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| BuildError::Spawn { program: program.into(), source })?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
