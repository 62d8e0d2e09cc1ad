//! Talking to a Klaxon server: where it is and which key to use (flags, environment, or a profile
//! of the profiles file), one request, and what can go wrong, each failure with its exit code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::Value;

const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Why a command failed; each kind has its own exit code, which scripts can rely on.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Something on this side: a file that cannot be read, a body that is not JSON, a profile.
    #[error("{0}")]
    Local(String),
    #[error("cannot reach {url}: {}", causes(source))]
    Unreachable { url: String, source: reqwest::Error },
    /// The server answered with an error.
    #[error("{}", describe(*status, body))]
    Api { status: u16, body: Value },
}

impl Failure {
    /// 1 local, 3 unreachable, 4 refused as invalid or conflicting, 5 not found, 6 not allowed,
    /// 7 a server error. (2 is a usage error, which the argument parser reports.)
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Local(_) => 1,
            Failure::Unreachable { .. } => 3,
            Failure::Api { status: 404, .. } => 5,
            Failure::Api { status: 401 | 403, .. } => 6,
            Failure::Api { status: 400..=499, .. } => 4,
            Failure::Api { .. } => 7,
        })
    }
}

/// An error and each of its causes, `: ` between them.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text = format!("{text}: {next}");
        cause = next.source();
    }
    text
}

/// `HTTP 400 invalid_request at `rule.name`: must not be empty`.
fn describe(status: u16, body: &Value) -> String {
    let error = &body["error"];
    let mut line = format!("HTTP {status}");
    if let Some(code) = error["code"].as_str() {
        line = format!("{line} {code}");
    }
    if let Some(field) = error["field"].as_str() {
        line = format!("{line} at `{field}`");
    }
    if let Some(limit) = error["limit"].as_str() {
        line = format!("{line} (limit: {limit})");
    }
    match error["message"].as_str() {
        Some(message) => format!("{line}: {message}"),
        None => line,
    }
}

/// Where the server is and the key to call it with.
pub struct Connection {
    /// The server's address as given (for messages).
    pub url: String,
    /// The same, parsed: every request's path is put under it.
    pub base: reqwest::Url,
    key: Option<String>,
    http: Client,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProfilesFile {
    default: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Profile {
    url: Option<String>,
    key: Option<String>,
}

/// What the flags and environment say; each one left out is taken from the profile.
pub struct Choice {
    pub url: Option<String>,
    pub key: Option<String>,
    pub profile: Option<String>,
    pub profiles: Option<PathBuf>,
}

impl Connection {
    pub fn open(choice: Choice) -> Result<Connection, Failure> {
        let profile = match choice.profiles.or_else(default_profiles_path) {
            Some(path) => read_profile(&path, choice.profile.as_deref())?,
            None if choice.profile.is_some() => {
                return Err(Failure::Local("a profile was named but no profiles file was found".into()));
            }
            None => None,
        };
        let (profile_url, profile_key) = profile.map(|p| (p.url, p.key)).unwrap_or_default();
        let url = choice.url.or(profile_url).unwrap_or_else(|| DEFAULT_URL.into());
        let url = url.trim_end_matches('/').to_owned();
        let base = reqwest::Url::parse(&url)
            .ok()
            .filter(|base| !base.cannot_be_a_base())
            .ok_or_else(|| Failure::Local(format!("`{url}` is not a server address (http://host:port)")))?;
        // Uploads wait for the component to compile; a large one can take several seconds.
        let http = Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| Failure::Local(format!("setting up the HTTP client: {e}")))?;
        Ok(Connection { url, base, key: choice.key.or(profile_key), http })
    }

    /// Sends one request; answers the JSON body of a success (`Null` when there is none).
    pub fn send(&self, method: &str, url: reqwest::Url, body: Option<(&str, Vec<u8>)>) -> Result<Value, Failure> {
        let method = method.to_uppercase().parse().expect("an OpenAPI method is an HTTP method");
        let mut request = self.http.request(method, url);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let response = request.send().map_err(|source| Failure::Unreachable { url: self.url.clone(), source })?;
        read(response, &self.url)
    }
}

fn read(response: Response, url: &str) -> Result<Value, Failure> {
    let status = response.status();
    let text = response.text().map_err(|source| Failure::Unreachable { url: url.to_owned(), source })?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({ "error": { "message": text } }))
    };
    if status.is_success() { Ok(body) } else { Err(Failure::Api { status: status.as_u16(), body }) }
}

/// `$XDG_CONFIG_HOME/klaxon/profiles.toml`, else `~/.config/klaxon/profiles.toml`.
fn default_profiles_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(config.join("klaxon/profiles.toml"))
}

/// The named profile, else the file's default one; none when the file does not exist and no
/// profile was asked for.
fn read_profile(path: &Path, name: Option<&str>) -> Result<Option<Profile>, Failure> {
    let file: ProfilesFile = match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| Failure::Local(format!("{}: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name.is_none() => ProfilesFile::default(),
        Err(e) => return Err(Failure::Local(format!("{}: {e}", path.display()))),
    };
    let Some(name) = name.or(file.default.as_deref()) else {
        return Ok(None);
    };
    match file.profiles.get(name) {
        Some(profile) => Ok(Some(profile.clone())),
        None => {
            let known: Vec<_> = file.profiles.keys().map(String::as_str).collect();
            Err(Failure::Local(format!(
                "{}: no profile `{name}` (the file has: {})",
                path.display(),
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            )))
        }
    }
}
