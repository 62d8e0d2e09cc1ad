//! What plugins logged in their calls (dry runs and real ones alike), kept per plugin with a
//! bounded size: the newest `MAX_LINES` lines, with a failed call's error as a line of its own.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::RegistryResult;
use super::sandbox::LogLine;
use crate::error::invalid;
use crate::store::{Store, StoreResult};

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
    store: Store,
    next: Mutex<HashMap<String, u64>>,
}

impl PluginLogs {
    pub fn new(store: Store) -> Self {
        PluginLogs { store, next: Mutex::default() }
    }

    /// Keeps a call's lines (and its error, when it failed).
    pub fn keep(&self, prefix: &str, lines: impl IntoIterator<Item = KeptLine>) -> StoreResult<()> {
        let mut next = self.next.lock().expect("plugin log lock");
        let mut n = match next.get(prefix) {
            Some(n) => *n,
            None => self.store.last_plugin_log(prefix)?.map_or(0, |n| n + 1),
        };
        for line in lines {
            self.store.put_plugin_log(prefix, n, &line)?;
            if let Some(dropped) = n.checked_sub(MAX_LINES) {
                self.store.remove_plugin_log(prefix, dropped)?;
            }
            n += 1;
        }
        next.insert(prefix.to_string(), n);
        Ok(())
    }

    /// The plugin's lines, newest first, filtered (at most 100 unless `limit` says otherwise).
    pub fn read(&self, prefix: &str, query: &LogQuery) -> RegistryResult<Vec<KeptLine>> {
        let limit = query.limit.unwrap_or(100);
        if !(1..=MAX_LINES as usize).contains(&limit) {
            return Err(invalid("limit", format!("must be 1 to {MAX_LINES}")).into());
        }
        let mut out = Vec::new();
        for line in self.store.plugin_logs_newest_first::<KeptLine>(prefix) {
            let line = line?;
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
