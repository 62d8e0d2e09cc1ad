//! `klaxon`: the server (`klaxon serve`), and a command line for its API (`klaxon rules list`,
//! `klaxon plugins upload ...`) in the manner of Alertmanager's amtool.

mod client;
mod operations;
mod output;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use klaxon::config::{Config, LogFormat, Overrides};
use klaxon::plugins::build::{BuildOptions, build};
use serde_json::{Value, json};

use client::{Choice, Connection, Failure};
use operations::{Body, Op, RESOURCES};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Build a plugin crate (or a workspace of them) into WebAssembly components, and print the path
/// of each component built.
#[derive(Args)]
struct BuildArgs {
    /// The crate or workspace folder.
    dir: PathBuf,
    /// Build for wasm32-wasip2 (for plugins that use the standard library's I/O) instead of a
    /// pure component.
    #[arg(long)]
    wasi: bool,
    /// Cargo's target folder (default: the crate's own).
    #[arg(long)]
    target_dir: Option<PathBuf>,
}

/// Bring the PostgreSQL database's schema up to date (`--store`, `KLAXON_STORE` or the
/// configuration's `[store] url`), or move an embedded installation into an empty PostgreSQL
/// database (`--from` a stopped server's data folder `--to` the database).
#[derive(Args)]
struct MigrateArgs {
    /// The data folder of an embedded installation to copy (its server stopped).
    #[arg(long, requires = "to")]
    from: Option<PathBuf>,
    /// The empty PostgreSQL database to copy it into (`postgres://...`).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Count what would be copied, and copy nothing.
    #[arg(long, requires = "from")]
    dry_run: bool,
    #[command(flatten)]
    overrides: Overrides,
}

/// Back up an embedded installation into one file (the store at one instant, the admin token,
/// compiled plugin artifacts, a manifest): through its server while one runs on the folder,
/// else straight from the folder. Prints the manifest.
#[derive(Args)]
struct BackupArgs {
    /// The installation's data folder.
    #[arg(long, env = "KLAXON_DATA_DIR")]
    data_dir: PathBuf,
    /// The backup file to write (it must not exist).
    #[arg(long)]
    to: PathBuf,
    /// The platform admin token, when the server was given one instead of the folder's own.
    #[arg(long, env = "KLAXON_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

/// Restore a backup into a new data folder (absent or empty), after checking the whole file;
/// prints its manifest. Start a server on the folder to use it.
#[derive(Args)]
struct RestoreArgs {
    /// The backup file.
    #[arg(long)]
    from: PathBuf,
    /// The new data folder.
    #[arg(long)]
    data_dir: PathBuf,
}

/// Check the store's consistency: every entry read, and what entries promise one another (a
/// record's tenant, a delivery's notification, an alert's rule) verified. The embedded store's
/// server must be stopped; on PostgreSQL it may run alongside the nodes.
#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    overrides: Overrides,
}

fn cli(api: &Value) -> Command {
    let serve = Overrides::augment_args(Command::new("serve")).about("Start the server");
    let migrate = MigrateArgs::augment_args(Command::new("migrate"));
    let backup = BackupArgs::augment_args(Command::new("backup"));
    let restore = RestoreArgs::augment_args(Command::new("restore"));
    let check = CheckArgs::augment_args(Command::new("check"));
    let build = BuildArgs::augment_args(Command::new("build"));
    let resources = RESOURCES.iter().map(|resource| match resource.name {
        "plugins" => resource.command(api).subcommand(build.clone()),
        _ => resource.command(api),
    });
    Command::new("klaxon")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Multi-tenant alerting and notification rules, extended with WebAssembly")
        .after_help(
            "Exit codes: 0 done, 1 a local problem (a file, a profile), 2 bad usage, 3 the server cannot be \
             reached, 4 the API refused the request (invalid or conflicting), 5 not found, 6 not allowed \
             (key missing, unknown or without the role), 7 a server error.",
        )
        .subcommand_required(true)
        .args(operations::connection_args().map(|arg| arg.global(false)))
        .subcommand(serve)
        .subcommand(migrate)
        .subcommand(backup)
        .subcommand(restore)
        .subcommand(check)
        .subcommands(resources)
}

fn main() -> ExitCode {
    let api: Value = serde_json::from_str(klaxon::api::OPENAPI).expect("the embedded OpenAPI description is JSON");
    let matches = cli(&api).get_matches();
    let (name, args) = matches.subcommand().expect("a subcommand is required");
    let done = match (name, args.subcommand()) {
        ("serve", _) => serve(args),
        ("migrate", _) => migrate(args),
        ("backup", _) => backup(args),
        ("restore", _) => restore(args),
        ("check", _) => check(args),
        ("plugins", Some(("build", args))) => build_plugins(args),
        (resource, Some((verb, args))) => {
            let resource = RESOURCES.iter().find(|r| r.name == resource).expect("a known resource");
            let op = resource.ops.iter().find(|op| op.verb == verb).expect("a known verb");
            call(&api, op, &matches, args)
        }
        _ => unreachable!("every resource requires a verb"),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.exit_code()
        }
    }
}

fn serve(args: &ArgMatches) -> Result<(), Failure> {
    let run = || -> anyhow::Result<()> {
        let overrides = Overrides::from_arg_matches(args)?;
        let config = Config::load(&overrides)?;
        init_logging(config.log_format);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads())
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        runtime.block_on(klaxon::server::serve(config))?;
        Ok(())
    };
    run().map_err(|e| Failure::Local(format!("{e:#}")))
}

fn migrate(args: &ArgMatches) -> Result<(), Failure> {
    let run = || -> anyhow::Result<()> {
        let MigrateArgs { from, to, dry_run, overrides } = MigrateArgs::from_arg_matches(args)?;
        let (Some(from), Some(to)) = (from, to) else {
            let config = Config::load(&overrides)?;
            anyhow::ensure!(
                !config.store.url.is_empty(),
                "no PostgreSQL database named (--store, KLAXON_STORE or [store] url); the embedded database \
                 brings itself up to date at start"
            );
            klaxon::server::open_store(&config).context("migrating the PostgreSQL schema")?;
            println!("The PostgreSQL schema is up to date.");
            return Ok(());
        };
        let source = klaxon::store::Store::open(&from, 64 << 20).with_context(|| {
            format!("opening the embedded installation in {} (is its server stopped?)", from.display())
        })?;
        let target = klaxon::store::Store::connect(&to, 4, &from).context("connecting to the target database")?;
        let copied = source.copy_into(&target, dry_run)?;
        let mut total = 0;
        for (tree, entries) in &copied.trees {
            println!("{tree:<20} {entries:>12}");
            total += entries;
        }
        let done = if dry_run { "would copy" } else { "copied, and the target holds as many" };
        println!("{:<20} {total:>12}  ({done})", "all");
        if !dry_run && from.join("admin-token").exists() {
            println!(
                "The platform admin token is in {}: give it to every node as admin_token (or KLAXON_ADMIN_TOKEN).",
                from.join("admin-token").display()
            );
        }
        Ok(())
    };
    run().map_err(|e| Failure::Local(format!("{e:#}")))
}

fn backup(args: &ArgMatches) -> Result<(), Failure> {
    let run = || -> anyhow::Result<()> {
        let BackupArgs { data_dir, to, admin_token } = BackupArgs::from_arg_matches(args)?;
        anyhow::ensure!(!to.exists(), "{} exists: back up into a new file", to.display());
        let partial = PathBuf::from(format!("{}.partial", to.display()));
        let taken = (|| {
            let mut file = private_file(&partial)?;
            let running = std::fs::read_to_string(data_dir.join("address")).ok();
            let manifest = match running.map(|url| url.trim().to_string()) {
                Some(url) if answers(&url) => {
                    let token = match admin_token {
                        Some(token) => token,
                        None => std::fs::read_to_string(data_dir.join("admin-token"))
                            .context("reading the folder's admin token (give --admin-token)")?
                            .trim()
                            .to_string(),
                    };
                    download(&format!("{url}/v1/admin/backup"), &token, &mut file)?;
                    file.sync_all()?;
                    klaxon::backup::verify(&partial)?
                }
                _ => {
                    let store = klaxon::store::Store::open(&data_dir, 64 << 20).with_context(|| {
                        format!("opening {} (no server answered at the address it keeps)", data_dir.display())
                    })?;
                    let manifest = klaxon::backup::write(&store, &mut file, jiff::Timestamp::now())?;
                    file.sync_all()?;
                    manifest
                }
            };
            std::fs::rename(&partial, &to)?;
            Ok::<_, anyhow::Error>(manifest)
        })();
        let manifest = taken.inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })?;
        println!("{}", serde_json::to_string_pretty(&manifest)?);
        eprintln!(
            "Backed up {} entries and {} files into {}.",
            manifest.trees.values().sum::<u64>(),
            manifest.files,
            to.display()
        );
        Ok(())
    };
    run().map_err(|e| Failure::Local(format!("{e:#}")))
}

fn restore(args: &ArgMatches) -> Result<(), Failure> {
    let run = || -> anyhow::Result<()> {
        let RestoreArgs { from, data_dir } = RestoreArgs::from_arg_matches(args)?;
        let manifest = klaxon::backup::restore(&from, &data_dir, 64 << 20)?;
        println!("{}", serde_json::to_string_pretty(&manifest)?);
        eprintln!(
            "Restored {} entries and {} files into {}; start it with `klaxon serve --data-dir {}`.",
            manifest.trees.values().sum::<u64>(),
            manifest.files,
            data_dir.display(),
            data_dir.display()
        );
        Ok(())
    };
    run().map_err(|e| Failure::Local(format!("{e:#}")))
}

fn check(args: &ArgMatches) -> Result<(), Failure> {
    let run = || -> anyhow::Result<()> {
        let CheckArgs { overrides } = CheckArgs::from_arg_matches(args)?;
        let config = Config::load(&overrides)?;
        anyhow::ensure!(
            !config.store.url.is_empty() || config.data_dir.join("db").exists(),
            "{} holds no embedded store",
            config.data_dir.display()
        );
        let store = klaxon::server::open_store(&config).with_context(|| match config.store.url.as_str() {
            "" => format!("opening {} (is its server stopped?)", config.data_dir.display()),
            _ => "connecting to the database".to_string(),
        })?;
        let checked = store.check()?;
        for (tree, entries) in &checked.trees {
            println!("{tree:<20} {entries:>12}");
        }
        for problem in &checked.problems {
            println!("problem: {problem}");
        }
        let found = checked.problems.len() as u64 + checked.unlisted;
        anyhow::ensure!(found == 0, "{found} problems found ({} not listed)", checked.unlisted);
        println!("consistent: {} entries read", checked.trees.iter().map(|(_, n)| n).sum::<u64>());
        Ok(())
    };
    run().map_err(|e| Failure::Local(format!("{e:#}")))
}

/// A new file only its owner may read (a backup holds the admin token and channel secrets).
fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// Whether a Klaxon server answers at `url`.
fn answers(url: &str) -> bool {
    reqwest::blocking::get(format!("{url}/healthz")).is_ok_and(|response| response.status().is_success())
}

/// Streams the server's backup into `file`.
fn download(url: &str, token: &str, file: &mut std::fs::File) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::builder().timeout(None).build()?;
    let mut response = client.post(url).bearer_auth(token).send().context("asking the server for a backup")?;
    if !response.status().is_success() {
        let status = response.status();
        let body: Value = response.text().ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default();
        anyhow::bail!("the server refused the backup ({status}): {}", body["error"]["message"].as_str().unwrap_or(""));
    }
    response.copy_to(file).context("receiving the backup")?;
    Ok(())
}

fn build_plugins(args: &ArgMatches) -> Result<(), Failure> {
    let run = || -> anyhow::Result<()> {
        let BuildArgs { dir, wasi, target_dir } = BuildArgs::from_arg_matches(args)?;
        for component in build(&BuildOptions { dir, wasi, target_dir })? {
            println!("{}", component.display());
        }
        Ok(())
    };
    run().map_err(|e| Failure::Local(format!("{e:#}")))
}

/// One API operation: the request from the arguments, the answer printed as asked. The
/// connection flags may come before the resource (`top`) or after it (`args`).
fn call(api: &Value, op: &Op, top: &ArgMatches, args: &ArgMatches) -> Result<(), Failure> {
    let typed = |matches: &ArgMatches, id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let text = |id: &str| {
        let from = if typed(args, id) || !typed(top, id) { args } else { top };
        from.get_one::<String>(id).cloned()
    };
    let connection = Connection::open(Choice {
        url: text("url"),
        key: text("key"),
        profile: text("profile"),
        profiles: text("profiles").map(PathBuf::from),
    })?;
    let url = request_url(connection.base.clone(), api, op, args);
    let body = request_body(api, op, args)?;
    let as_json = text("output").is_some_and(|o| o == "json");
    match connection.send(op.method, url, body) {
        Ok(answer) if as_json => print!("{}", output::json(&answer)),
        Ok(answer) => {
            print!("{}", output::table(&answer, op.columns));
            if let Some(more) = output::more(&answer) {
                eprintln!("{more}");
            }
        }
        Err(Failure::Api { status, body }) => {
            if as_json {
                print!("{}", output::json(&body));
            }
            return Err(Failure::Api { status, body });
        }
        Err(failure) => return Err(failure),
    }
    Ok(())
}

/// The server's address, the operation's path with its parameters filled in, and the query.
fn request_url(mut url: reqwest::Url, api: &Value, op: &Op, args: &ArgMatches) -> reqwest::Url {
    {
        let mut segments = url.path_segments_mut().expect("a base URL, checked when the connection opened");
        segments.pop_if_empty();
        for segment in op.path.split('/').skip(1) {
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(param) => segments.push(args.get_one::<String>(param).expect("path parameters are required")),
                None => segments.push(segment),
            };
        }
    }
    for param in op.query_params(api) {
        let name = param["name"].as_str().expect("a parameter has a name");
        if let Some(value) = args.get_one::<String>(&format!("query:{name}")) {
            url.query_pairs_mut().append_pair(name, value);
        }
    }
    url
}

/// The body and its content type: a component file, or JSON from a file, standard input or
/// the command line, checked here so a typo is pointed at before anything is sent.
fn request_body(api: &Value, op: &Op, args: &ArgMatches) -> Result<Option<(&'static str, Vec<u8>)>, Failure> {
    if op.pins {
        let version = args.get_one::<Value>("pinned").expect("VERSION is required");
        return Ok(Some(("application/json", json!({ "pinned_version": version }).to_string().into_bytes())));
    }
    match op.body(api) {
        Body::None => Ok(None),
        Body::Component => {
            let path = args.get_one::<String>("component").expect("COMPONENT is required");
            let bytes = std::fs::read(path).map_err(|e| Failure::Local(format!("{path}: {e}")))?;
            Ok(Some(("application/wasm", bytes)))
        }
        Body::Json { .. } => {
            let (source, text) = match (args.get_one::<String>("file"), args.get_one::<String>("data")) {
                (Some(path), _) => (path.clone(), read_file(path)?),
                (None, Some(data)) => ("--data".to_owned(), data.clone()),
                (None, None) => return Ok(None),
            };
            let body: Value =
                serde_json::from_str(&text).map_err(|e| Failure::Local(format!("{source} is not JSON: {e}")))?;
            Ok(Some(("application/json", body.to_string().into_bytes())))
        }
    }
}

/// A file's text, or standard input's for `-`.
fn read_file(path: &str) -> Result<String, Failure> {
    let text = match path {
        "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map(|_| text)
        }
        path => std::fs::read_to_string(path),
    };
    text.map_err(|e| Failure::Local(format!("{path}: {e}")))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KLAXON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_operation_has_a_command_and_the_command_line_is_well_formed() {
        let api: Value = serde_json::from_str(klaxon::api::OPENAPI).unwrap();
        cli(&api).debug_assert();
        // Operations a command of its own serves: `klaxon backup` writes the answer to a file.
        let own = [("post", "/v1/admin/backup", "backup")];
        for (_, _, command) in own {
            assert!(cli(&api).find_subcommand(command).is_some(), "{command}");
        }
        for (path, methods) in api["paths"].as_object().unwrap() {
            for method in methods.as_object().unwrap().keys().filter(|m| *m != "parameters") {
                let covered = RESOURCES.iter().flat_map(|r| r.ops).any(|op| op.path == path && op.method == method)
                    || own.iter().any(|(m, p, _)| m == method && p == path);
                assert!(covered || !path.starts_with("/v1/"), "no command for {method} {path}");
            }
        }
    }
}
