//! A throwaway PostgreSQL server for tests and benchmarks: Debian's `postgresql` started in a
//! temporary folder on a free port, one per test binary (`shared`), each test in a database of
//! its own (`database`). PostgreSQL refuses to run as root, so under root the server runs as the
//! package's `postgres` user. A watchdog stops the server and removes its folder when the
//! process that started it ends, however it ends.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Postgres {
    port: u16,
    databases: AtomicUsize,
}

/// The test binary's server, started on first use.
pub fn shared() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(Postgres::start)
}

/// The newest installed server's programs.
fn programs() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists())
        .collect();
    versions.sort_by_key(|bin| bin.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()));
    versions.pop().expect("no PostgreSQL server under /usr/lib/postgresql")
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// `program` as the user the server runs as.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    fn start() -> Self {
        let bin = programs();
        let dir = std::env::temp_dir().join(format!("klaxon-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the server's folder");
        if is_root() {
            run(Command::new("chown").arg("postgres:").arg(&dir), "chown");
        }
        let data = dir.join("data");
        run(
            as_server_user(&bin.join("initdb")).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]),
            "initdb",
        );
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        // Tests make and drop many connections; durability is the backend's promise, so fsync
        // stays on.
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300", dir.display());
        run(
            as_server_user(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(dir.join("log"))
                .args(["-w", "start"]),
            "pg_ctl start",
        );
        Self::watch(&bin, &dir);
        Postgres { port, databases: AtomicUsize::new(0) }
    }

    /// Stops the server and removes its folder once this process has ended.
    fn watch(bin: &Path, dir: &Path) {
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {user} {pg_ctl} -D {data} stop -m immediate; rm -rf {dir}",
            pid = std::process::id(),
            user = if is_root() { "runuser -u postgres --" } else { "" },
            pg_ctl = bin.join("pg_ctl").display(),
            data = dir.join("data").display(),
            dir = dir.display(),
        );
        // `setsid -f` returns at once, leaving the watchdog in a session of its own.
        let started = Command::new("setsid")
            .args(["-f", "sh", "-c", &stop])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("the server's watchdog starts");
        assert!(started.success(), "the server's watchdog starts");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database: its URL.
    pub fn database(&self) -> String {
        let name = format!("klaxon_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        let createdb = programs().join("createdb");
        run(
            Command::new(createdb).args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", &name]),
            "createdb",
        );
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}
