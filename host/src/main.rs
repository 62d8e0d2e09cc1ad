use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use klaxon::config::{Config, LogFormat, Overrides};
use klaxon::plugins::build::{BuildOptions, build};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "klaxon", version, about = "Multi-tenant alerting and notification rules, extended with WebAssembly")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP API.
    Serve(Overrides),
    /// Work with plugin source code.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Build a plugin crate (or a workspace of them) into WebAssembly components, and print the
    /// path of each component built.
    Build {
        /// The crate or workspace folder.
        dir: PathBuf,
        /// Build for wasm32-wasip2 (for plugins that use the standard library's I/O) instead of
        /// a pure component.
        #[arg(long)]
        wasi: bool,
        /// Cargo's target folder (default: the crate's own).
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(overrides) => {
            let config = Config::load(&overrides)?;
            init_logging(config.log_format);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(klaxon::server::serve(config))?;
        }
        Command::Plugin(PluginCommand::Build { dir, wasi, target_dir }) => {
            for component in build(&BuildOptions { dir, wasi, target_dir })? {
                println!("{}", component.display());
            }
        }
    }
    Ok(())
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
