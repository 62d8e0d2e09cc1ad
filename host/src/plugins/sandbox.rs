//! What one plugin call's `Store` holds: its limits, its log, its slice of the key-value store,
//! and (only for components that import WASI) a deny-by-default WASI context.

use serde::Serialize;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{v0_1, v0_2, v0_3};
use crate::clock::SharedClock;
use crate::store::KvScope;

/// Lines a plugin may log in one call, and bytes all its lines may take.
const MAX_LOG_LINES: usize = 200;
const MAX_LOG_BYTES: usize = 64 * 1024;
/// What the key-value store accepts per entry.
const MAX_KV_KEY_BYTES: usize = 256;
const MAX_KV_VALUE_BYTES: usize = 64 * 1024;
/// Instances, tables and memories a component may create in one call.
const MAX_INSTANCES: usize = 32;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 32;
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// A line a plugin logged, through the host import or on stdout/stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

/// The error a call fails with when it asks for more memory than its limit allows.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} bytes exceeded")]
pub struct MemoryLimitHit(pub u64);

/// What a store holds for its calls. A store kept warm serves later calls of one key-value scope
/// (see `warm`); its log starts empty for each call.
pub struct HostState {
    memory_limit: u64,
    /// What the store's linear memories take, all together.
    memory_bytes: u64,
    logs: Vec<LogLine>,
    log_bytes: usize,
    kv: KvScope,
    clock: SharedClock,
    wasi: Option<Wasi>,
    table: ResourceTable,
}

/// WASI for components that import it: no files, sockets or environment; stdout and stderr are
/// captured into the call's log. The pipes only grow: each remembers how much of it earlier calls
/// have already read, and a store whose pipes hold more than `MAX_LOG_BYTES` is not kept warm,
/// so every call has at least that much room.
struct Wasi {
    ctx: WasiCtx,
    stdout: Pipe,
    stderr: Pipe,
}

struct Pipe {
    pipe: MemoryOutputPipe,
    read: usize,
}

impl Pipe {
    fn new() -> Self {
        Pipe { pipe: MemoryOutputPipe::new(2 * MAX_LOG_BYTES), read: 0 }
    }

    /// What was written since the last read.
    fn unread(&mut self) -> String {
        let contents = self.pipe.contents();
        let text = String::from_utf8_lossy(&contents[self.read..]).into_owned();
        self.read = contents.len();
        text
    }
}

impl HostState {
    pub fn new(memory_limit: u64, kv: KvScope, clock: SharedClock) -> Self {
        HostState {
            memory_limit,
            memory_bytes: 0,
            logs: Vec::new(),
            log_bytes: 0,
            kv,
            clock,
            wasi: None,
            table: ResourceTable::new(),
        }
    }

    /// The call's log, with whatever the plugin wrote to stdout and stderr, leaving the log
    /// empty for the next call.
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        let printed = match &mut self.wasi {
            Some(wasi) => [("info", wasi.stdout.unread()), ("error", wasi.stderr.unread())],
            None => Default::default(),
        };
        for (level, text) in printed {
            for line in text.lines() {
                self.push_log(level, line.to_string());
            }
        }
        self.log_bytes = 0;
        std::mem::take(&mut self.logs)
    }

    /// What the store's linear memories take: what keeping it warm costs.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// Whether the next call would still have its full room for stdout and stderr.
    pub fn reusable(&self) -> bool {
        self.wasi.as_ref().is_none_or(|wasi| wasi.stdout.read.max(wasi.stderr.read) <= MAX_LOG_BYTES)
    }

    fn push_log(&mut self, level: &'static str, message: String) {
        if self.logs.len() >= MAX_LOG_LINES || self.log_bytes + message.len() > MAX_LOG_BYTES {
            if self.logs.last().is_none_or(|l| l.level != "truncated") {
                self.logs.push(LogLine { level: "truncated", message: "log limit reached".into() });
            }
            return;
        }
        self.log_bytes += message.len();
        self.logs.push(LogLine { level, message });
    }
}

impl wasmtime::ResourceLimiter for HostState {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_limit {
            return Err(wasmtime::Error::new(MemoryLimitHit(self.memory_limit)));
        }
        // Asked for a new memory too (from 0), so the sum covers every memory of the store.
        self.memory_bytes += desired.saturating_sub(current) as u64;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// What the host imports do, whatever the version a plugin imports them from.
impl HostState {
    fn kv_read(&self, key: &str) -> wasmtime::Result<Option<Vec<u8>>> {
        self.kv.get(key).map_err(wasmtime::Error::new)
    }

    fn kv_write(&self, key: &str, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        if key.len() > MAX_KV_KEY_BYTES {
            return Ok(Err(format!("key is {} bytes, over the limit of {MAX_KV_KEY_BYTES}", key.len())));
        }
        if value.len() > MAX_KV_VALUE_BYTES {
            return Ok(Err(format!("value is {} bytes, over the limit of {MAX_KV_VALUE_BYTES}", value.len())));
        }
        self.kv.set(key, value).map_err(wasmtime::Error::new)?;
        Ok(Ok(()))
    }

    fn kv_remove(&self, key: &str) -> wasmtime::Result<()> {
        self.kv.remove(key).map_err(wasmtime::Error::new)?;
        Ok(())
    }
}

/// The host interface of one WIT version, answered by the methods above.
macro_rules! host_interface {
    ($v:ident) => {
        impl $v::types::Host for HostState {}

        impl $v::host::Host for HostState {
            fn log(&mut self, level: $v::host::Level, message: String) -> wasmtime::Result<()> {
                use $v::host::Level;
                let level = match level {
                    Level::Trace => "trace",
                    Level::Debug => "debug",
                    Level::Info => "info",
                    Level::Warn => "warn",
                    Level::Error => "error",
                };
                self.push_log(level, message);
                Ok(())
            }

            fn now(&mut self) -> wasmtime::Result<i64> {
                Ok(self.clock.now().as_millisecond())
            }

            fn kv_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
                self.kv_read(&key)
            }

            fn kv_set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
                self.kv_write(&key, value)
            }

            fn kv_delete(&mut self, key: String) -> wasmtime::Result<()> {
                self.kv_remove(&key)
            }
        }
    };
}

host_interface!(v0_1);
host_interface!(v0_2);
host_interface!(v0_3);

/// WASI's wall clock reads Klaxon's clock, like the `now` import.
struct WallClock(SharedClock);

impl wasmtime_wasi::HostWallClock for WallClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(1)
    }

    fn now(&self) -> std::time::Duration {
        // A time before 1970 reads as 1970: WASI's wall clock cannot go below it.
        self.0.now().duration_since(jiff::Timestamp::UNIX_EPOCH).try_into().unwrap_or_default()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = self.wasi.get_or_insert_with(|| {
            let (stdout, stderr) = (Pipe::new(), Pipe::new());
            let ctx = WasiCtxBuilder::new()
                .wall_clock(WallClock(self.clock.clone()))
                .stdout(stdout.pipe.clone())
                .stderr(stderr.pipe.clone())
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build();
            Wasi { ctx, stdout, stderr }
        });
        WasiCtxView { ctx: &mut wasi.ctx, table: &mut self.table }
    }
}
