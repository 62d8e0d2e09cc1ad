//! Shared test helpers: a real `klaxon serve` process on 127.0.0.1 with sled in a temp folder,
//! an HTTP client for it, and the guest components built from source once per run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

pub const ADMIN: &str = "test-admin-token-0123456789";

/// A running server. Its data folder outlives restarts; the process dies with the value.
pub struct Server {
    dir: tempfile::TempDir,
    config: Option<PathBuf>,
    args: Vec<String>,
    child: Option<Child>,
    starts: u32,
    pub base: String,
    http: Client,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with_config(None)
    }

    /// Starts with a TOML config file read over the defaults.
    pub fn start_with_config(toml: Option<&str>) -> Server {
        Self::start_with(toml, &[])
    }

    /// Starts with a TOML config file (if any) and extra `serve` flags.
    pub fn start_with(toml: Option<&str>, args: &[&str]) -> Server {
        Self::start_on(toml, args, |_| {})
    }

    /// `start_with`, on a data folder `prepare` makes first (given its path, which does not exist).
    pub fn start_on(toml: Option<&str>, args: &[&str], prepare: impl FnOnce(&Path)) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        prepare(&dir.path().join("data"));
        let config = toml.map(|text| {
            let path = dir.path().join("klaxon.toml");
            std::fs::write(&path, text).expect("config file");
            path
        });
        let http = Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut server = Server { dir, config, args, child: None, starts: 0, base: String::new(), http };
        server.spawn();
        server
    }

    /// Starts the process (again) on the same data folder.
    pub fn spawn(&mut self) {
        self.starts += 1;
        let log_path = self.dir.path().join(format!("server-{}.log", self.starts));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_klaxon"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .env("KLAXON_ADMIN_TOKEN", ADMIN)
            .env_remove("KLAXON_CONFIG")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(&self.args);
        let mut child = cmd.spawn().expect("klaxon starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|l| l["message"] == "listening")
                .and_then(|l| l["addr"].as_str().map(str::to_owned))
            {
                self.base = format!("http://{addr}");
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("klaxon exited with {status} before listening:\n{text}");
            }
            assert!(Instant::now() < deadline, "klaxon did not start listening:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Stops the process with `signal` (TERM for a graceful stop, KILL for a crash) and waits.
    pub fn stop(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
            assert!(status.expect("kill runs").success());
            child.wait().expect("klaxon exits");
        }
    }

    /// The running server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// A SIGKILL now, while other threads may be using the server; `crash_and_restart` then
    /// reaps it and starts it again.
    pub fn kill_now(&self) {
        let status = Command::new("kill").args(["-KILL", &self.pid().to_string()]).status();
        assert!(status.expect("kill runs").success());
    }

    /// A graceful stop, `change` on the stopped server's data folder, and a start.
    pub fn while_stopped(&mut self, change: impl FnOnce(&Path)) {
        self.stop("TERM");
        change(&self.data());
        self.spawn();
    }

    /// The server's data folder.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A graceful stop and a start on the same data folder.
    pub fn restart(&mut self) {
        self.stop("TERM");
        self.spawn();
    }

    /// A crash (SIGKILL) and a start on the same data folder.
    pub fn crash_and_restart(&mut self) {
        self.stop("KILL");
        self.spawn();
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `body` (if any) as JSON; answers the status and the JSON body (`null` if none).
    pub fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path, Some(token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request)
    }

    /// Creates a tenant; answers its id and its admin key.
    pub fn tenant(&self, name: &str) -> (String, String) {
        let (status, body) = self.call(Method::POST, "/v1/tenants", ADMIN, Some(json!({ "name": name })));
        assert_eq!(status, 201, "{body}");
        (body["tenant"]["id"].as_str().unwrap().into(), body["admin_key"]["token"].as_str().unwrap().into())
    }

    /// Creates a key with `role` in the tenant of `admin_key`; answers its token.
    pub fn key(&self, admin_key: &str, role: &str) -> String {
        let (status, body) =
            self.call(Method::POST, "/v1/api-keys", admin_key, Some(json!({ "name": role, "role": role })));
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().into()
    }

    pub fn upload(&self, token: &str, name: &str, kind: &str, component: &[u8]) -> (u16, Value) {
        read(
            self.request(Method::POST, &format!("/v1/plugins?name={name}&kind={kind}"), Some(token))
                .header("content-type", "application/wasm")
                .body(component.to_vec()),
        )
    }

    pub fn invoke(&self, token: &str, name: &str, input: Value) -> (u16, Value) {
        self.call(Method::POST, &format!("/v1/plugins/{name}/invoke"), token, Some(input))
    }

    /// Sets a tenant's plugin limits, as the platform admin.
    pub fn plugin_limits(&self, tenant: &str, limits: Value) {
        let (status, body) =
            self.call(Method::PATCH, &format!("/v1/tenants/{tenant}"), ADMIN, Some(json!({ "plugin_limits": limits })));
        assert_eq!(status, 200, "{body}");
    }

    /// Gives a tenant's plugins the default limits but 5 s of time, for tests that check
    /// something else than time on a machine busy with other tests.
    pub fn plentiful_time(&self, tenant: &str) {
        let limits = json!({ "fuel": 50_000_000, "time_ms": 5_000, "memory_bytes": 33554432,
                             "input_bytes": 262144, "output_bytes": 262144 });
        self.plugin_limits(tenant, limits);
    }

    /// One sample of a counter or gauge from `/metrics`.
    pub fn metric(&self, sample: &str) -> f64 {
        let text = self.request(Method::GET, "/metrics", None).send().expect("metrics").text().expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0.0, |v| v.parse().expect("a number"))
    }

    /// Waits until `count` plugin versions run optimized code and none baseline code: the
    /// optimizer has compiled every loaded version again in the background.
    pub fn wait_until_optimized(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let baseline = self.metric(r#"klaxon_plugins_loaded{tier="baseline"}"#);
            let optimized = self.metric(r#"klaxon_plugins_loaded{tier="optimized"}"#);
            if (baseline, optimized) == (0.0, count as f64) {
                return;
            }
            assert!(Instant::now() < deadline, "{optimized} of {count} plugins optimized, {baseline} baseline");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn read(request: RequestBuilder) -> (u16, Value) {
    let response = request.send().expect("request is answered");
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A minimal evaluation input with `config`.
pub fn evaluation(config: Value) -> Value {
    json!({ "rule": { "id": "rule_1", "name": "test rule" }, "config": config })
}

/// The guest components, built from source with `klaxon plugins build` once per test run.
pub struct Guests {
    pub week_over_week_drop: Vec<u8>,
    pub zscore_anomaly: Vec<u8>,
    pub slack_blocks: Vec<u8>,
    pub pagerduty: Vec<u8>,
    pub opsgenie: Vec<u8>,
    pub discord: Vec<u8>,
    pub hostile: Vec<u8>,
    pub hostile_channel: Vec<u8>,
    pub wasi_probe: Vec<u8>,
}

pub fn guests() -> &'static Guests {
    static GUESTS: OnceLock<Guests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
        let target = root.join("target/guests");
        let mut built = build(&root.join("plugins"), &target, false);
        built.extend(build(&root.join("tests/components/hostile"), &target, false));
        built.extend(build(&root.join("tests/components/hostile-channel"), &target, false));
        built.extend(build(&root.join("tests/components/wasi-probe"), &target, true));
        let take = |name: &str| {
            let path = built
                .iter()
                .find(|p| p.file_stem().is_some_and(|s| s == name))
                .unwrap_or_else(|| panic!("{name} was built"));
            std::fs::read(path).expect("component")
        };
        Guests {
            week_over_week_drop: take("week_over_week_drop"),
            zscore_anomaly: take("zscore_anomaly"),
            slack_blocks: take("slack_blocks"),
            pagerduty: take("pagerduty"),
            opsgenie: take("opsgenie"),
            discord: take("discord"),
            hostile: take("hostile"),
            hostile_channel: take("hostile_channel"),
            wasi_probe: take("wasi_probe"),
        }
    })
}

fn build(dir: &Path, target: &Path, wasi: bool) -> Vec<PathBuf> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_klaxon"));
    cmd.args(["plugins", "build"]).arg(dir).arg("--target-dir").arg(target);
    if wasi {
        cmd.arg("--wasi");
    }
    let output = cmd.stderr(Stdio::inherit()).output().expect("klaxon plugins build runs");
    std::io::stderr().flush().ok();
    assert!(output.status.success(), "building {} failed", dir.display());
    String::from_utf8(output.stdout).expect("paths").lines().map(PathBuf::from).collect()
}

/// A language's guests, built from source by that language's tool once per test run: the example
/// condition and template, and a hostile condition.
pub struct LanguageGuests {
    /// The version of `klaxon:plugin` the language's examples are built against.
    pub wit_version: &'static str,
    pub condition: Vec<u8>,
    pub template: Vec<u8>,
    pub hostile: Vec<u8>,
}

/// Built with componentize-py (`pip install componentize-py`).
pub fn python_guests() -> &'static LanguageGuests {
    static GUESTS: OnceLock<LanguageGuests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let root = workspace_root();
        let apps = [
            ("condition", root.join("examples/python/condition")),
            ("template", root.join("examples/python/template")),
            ("condition", root.join("tests/components/python-hostile")),
        ];
        build_language(
            "python",
            "0.1.0",
            apps.map(|(world, app)| {
                let wit = root.join("wit/0.1.0");
                move |wasm: &Path| componentize_py(&wit, world, &app, wasm)
            }),
        )
    })
}

/// The Python channel example (Telegram), built against klaxon:plugin@0.3.0.
pub fn python_channel() -> &'static [u8] {
    static COMPONENT: OnceLock<Vec<u8>> = OnceLock::new();
    COMPONENT.get_or_init(|| {
        let root = workspace_root();
        let out = root.join("target/guests/python");
        std::fs::create_dir_all(&out).expect("output folder");
        let wasm = out.join("telegram.wasm");
        let app = root.join("examples/python/channel");
        let status = componentize_py(&root.join("wit"), "channel", &app, &wasm).status().expect("componentize-py runs");
        assert!(status.success(), "building {} failed", app.display());
        std::fs::read(&wasm).expect("component")
    })
}

fn componentize_py(wit: &Path, world: &str, app: &Path, wasm: &Path) -> Command {
    let mut command = Command::new("componentize-py");
    command.arg("-d").arg(wit).args(["-w", world, "--quiet", "componentize", "-p"]);
    command.arg(app).arg("app").arg("-o").arg(wasm);
    // Python would leave __pycache__ folders beside the sources.
    command.env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

/// Built with componentize-js (`npm install` in `examples/javascript`).
pub fn javascript_guests() -> &'static LanguageGuests {
    static GUESTS: OnceLock<LanguageGuests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let root = workspace_root();
        let tool = root.join("examples/javascript/node_modules/.bin/componentize-js");
        let apps = [
            ("condition", root.join("examples/javascript/condition.js")),
            ("template", root.join("examples/javascript/template.js")),
            ("condition", root.join("tests/components/javascript-hostile/hostile.js")),
        ];
        build_language(
            "javascript",
            "0.1.0",
            apps.map(|(world, app)| {
                let (tool, wit) = (tool.clone(), root.join("wit/0.1.0"));
                move |wasm: &Path| {
                    let mut command = Command::new(&tool);
                    command.arg(app).arg("-w").arg(wit).args([
                        "-n",
                        world,
                        "-d",
                        "stdio",
                        "random",
                        "clocks",
                        "http",
                        "fetch-event",
                    ]);
                    command.arg("-o").arg(wasm).stdout(Stdio::null());
                    command
                }
            }),
        )
    })
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Runs the three build commands at once (the tools are mostly single-threaded), each writing to
/// the path it is given, and reads the components.
/// Built with `examples/c/build.sh` (wit-bindgen's C bindings, clang for wasm32-wasi), against
/// klaxon:plugin@0.2.0: the Rust SDK's plugins are 0.3.0 components, the JavaScript and Python
/// ones 0.1.0, so each version the server loads is exercised.
pub fn c_guests() -> &'static LanguageGuests {
    static GUESTS: OnceLock<LanguageGuests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let root = workspace_root();
        let script = root.join("examples/c/build.sh");
        let apps = [
            ("condition", root.join("examples/c/condition/usage_limit.c")),
            ("template", root.join("examples/c/template/compact_json.c")),
            ("condition", root.join("tests/components/c-hostile/hostile.c")),
        ];
        build_language(
            "c",
            "0.2.0",
            apps.map(|(world, app)| {
                let (script, wit) = (script.clone(), root.join("wit/0.2.0"));
                move |wasm: &Path| {
                    let mut command = Command::new("bash");
                    command.arg(script).arg(world).arg(app).arg(wasm).env("WIT", wit);
                    command
                }
            }),
        )
    })
}

fn build_language(
    language: &str,
    wit_version: &'static str,
    commands: [impl FnOnce(&Path) -> Command; 3],
) -> LanguageGuests {
    let out = workspace_root().join("target/guests").join(language);
    std::fs::create_dir_all(&out).expect("output folder");
    let builds: Vec<(PathBuf, Child)> = commands
        .into_iter()
        .enumerate()
        .map(|(i, command)| {
            let wasm = out.join(format!("{i}.wasm"));
            let child = command(&wasm).spawn().unwrap_or_else(|e| panic!("the {language} build tool runs: {e}"));
            (wasm, child)
        })
        .collect();
    let mut built = builds.into_iter().map(|(wasm, mut child)| {
        assert!(child.wait().expect("the build finishes").success(), "building {} failed", wasm.display());
        std::fs::read(&wasm).expect("component")
    });
    let mut next = || built.next().expect("three components");
    LanguageGuests { wit_version, condition: next(), template: next(), hostile: next() }
}
