//! What plugins logged in their calls (dry runs and real ones alike), kept per plugin with a
//! bounded size: the newest `MAX_LINES` lines, with a failed call's error as a line of its own.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::sandbox::LogLine;
use crate::error::{ApiError, ApiResult};
use crate::store::{self, StoreResult};

/// Lines kept per plugin; the oldest go first.
const MAX_LINES: u64 = 1000;

/// One kept line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeptLine {
    pub at: Timestamp,
    pub level: String,
    pub message: String,
    /// The function called: `evaluate`, `validate` or `render`.
    pub function: String,
    pub version: u32,
    /// `plugin` for what the plugin logged, `klaxon` for a failed call's error.
    pub source: String,
}

/// Which lines to read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    pub level: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub limit: Option<usize>,
}

/// Keys are the plugin's prefix (`tenant/name/`) and a sequence number, so the newest line is the
/// last key and the line `MAX_LINES` before it is the one to drop.
pub struct PluginLogs {
    tree: sled::Tree,
    next: Mutex<HashMap<String, u64>>,
}

impl PluginLogs {
    pub fn new(tree: sled::Tree) -> Self {
        PluginLogs { tree, next: Mutex::default() }
    }

    /// Keeps a call's lines (and its error, when it failed).
    pub fn keep(&self, prefix: &str, lines: impl IntoIterator<Item = KeptLine>) -> StoreResult<()> {
        let mut next = self.next.lock().expect("plugin log lock");
        let mut n = match next.get(prefix) {
            Some(n) => *n,
            None => self.last(prefix)?.map_or(0, |n| n + 1),
        };
        for line in lines {
            self.tree.insert(key(prefix, n), serde_json::to_vec(&line).expect("log lines serialize"))?;
            if let Some(dropped) = n.checked_sub(MAX_LINES) {
                self.tree.remove(key(prefix, dropped))?;
            }
            n += 1;
        }
        next.insert(prefix.to_string(), n);
        Ok(())
    }

    /// The plugin's lines, newest first, filtered (at most 100 unless `limit` says otherwise).
    pub fn read(&self, prefix: &str, query: &LogQuery) -> ApiResult<Vec<KeptLine>> {
        let limit = query.limit.unwrap_or(100);
        if !(1..=MAX_LINES as usize).contains(&limit) {
            return Err(ApiError::field("limit", format!("must be 1 to {MAX_LINES}")));
        }
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(prefix.as_bytes()).rev() {
            let (k, bytes) = entry.map_err(store::StoreError::from)?;
            let line: KeptLine = store::decode(&String::from_utf8_lossy(&k), &bytes)?;
            if query.until.is_some_and(|until| line.at >= until) {
                continue;
            }
            if query.since.is_some_and(|since| line.at < since) {
                break;
            }
            if query.level.as_deref().is_none_or(|level| level == line.level) {
                out.push(line);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Forgets where the numbering of the plugins whose keys start with `prefix` stands (their
    /// lines were deleted with them).
    pub fn forget(&self, prefix: &str) {
        self.next.lock().expect("plugin log lock").retain(|key, _| !key.starts_with(prefix));
    }

    fn last(&self, prefix: &str) -> StoreResult<Option<u64>> {
        let Some((k, _)) = self.tree.scan_prefix(prefix.as_bytes()).next_back().transpose()? else {
            return Ok(None);
        };
        Ok(k[prefix.len()..].try_into().ok().map(u64::from_be_bytes))
    }
}

fn key(prefix: &str, n: u64) -> Vec<u8> {
    [prefix.as_bytes(), &n.to_be_bytes()].concat()
}

/// The lines of one call, as kept.
pub fn of_call(logs: &[LogLine], error: Option<String>, function: &str, version: u32, at: Timestamp) -> Vec<KeptLine> {
    let line = |level: &str, message: String, source: &str| KeptLine {
        at,
        level: level.to_string(),
        message,
        function: function.to_string(),
        version,
        source: source.to_string(),
    };
    let mut lines: Vec<KeptLine> = logs.iter().map(|l| line(l.level, l.message.clone(), "plugin")).collect();
    lines.extend(error.map(|e| line("error", e, "klaxon")));
    lines
}
