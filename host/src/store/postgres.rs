//! The PostgreSQL backend, for installations that outgrow one machine. Each tree is a table
//! `kv_<tree>` of `(tenant_id, key, value)` whose primary key leads with the tenant (the column
//! a Citus deployment would distribute by; platform trees such as keys and sessions keep an
//! empty tenant), with an index on `key` alone for reads in key order across tenants (timers
//! and the delivery queue are ordered by time first).
//!
//! The store's traits are synchronous: a call waits on the client's answer on the caller's
//! thread while a runtime of the backend's own drives the connections. A transaction runs at
//! `SERIALIZABLE` on one connection of the pool; its writes wait in memory (its reads see them)
//! and go in one statement per table before `COMMIT`. A serialization failure or a deadlock
//! runs the body again, as a conflict does on sled. Committed means durable: `flush` has
//! nothing to do.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::ops::Bound;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, NoTls, Statement};

use super::backend::{
    Backend, Bytes, EntryIter, Fence, Keyspace, Lease, Member, Membership, Peer, TxError, TxKeyspace, TxResult, Wake,
    Written,
};
use super::{StoreError, StoreResult};

/// Schema changes, in order; each runs once per database, recorded in `klaxon_migrations`.
/// (Each tree's table is made when the tree is first opened: see `open_tree`.)
const MIGRATIONS: &[(i32, &str)] = &[
    (1, "CREATE SEQUENCE IF NOT EXISTS klaxon_ids"),
    (
        2,
        "CREATE TABLE klaxon_nodes (node text PRIMARY KEY, address text NOT NULL, \
         started_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL); \
         CREATE TABLE klaxon_partitions (partition integer PRIMARY KEY, node text NOT NULL, \
         epoch bigint NOT NULL, renewed_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)",
    ),
];

/// Taken while a node changes the schema, so nodes starting together do it once.
const SCHEMA_LOCK: i64 = 0x6b6c_6178_6f6e;

/// A node no heartbeat was heard from for this long is forgotten.
const FORGOTTEN_AFTER: &str = "1 day";

/// Rows read per page by an iterator: small first (most readers want the first few), then more.
const FIRST_PAGE: i64 = 16;
const LARGEST_PAGE: i64 = 1024;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Backend(match e.as_db_error() {
            Some(db) => format!("PostgreSQL: {}", db.message()),
            None => format!("PostgreSQL: {e}"),
        })
    }
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED => {
                TxError::Conflict
            }
            _ => TxError::Abort(e.into()),
        }
    }
}

/// Waits for `future` on this thread; the backend's runtime does the I/O.
fn wait<T>(future: impl Future<Output = T>) -> T {
    futures_executor::block_on(future)
}

/// One connection and the statements prepared on it.
struct Connection {
    client: Client,
    prepared: RefCell<HashMap<String, Statement>>,
}

impl Connection {
    fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.prepared.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = wait(self.client.prepare(sql))?;
        self.prepared.borrow_mut().insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let statement = self.statement(sql)?;
        wait(self.client.query(&statement, params))
    }

    fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, tokio_postgres::Error> {
        let statement = self.statement(sql)?;
        wait(self.client.execute(&statement, params))
    }
}

/// The connections, opened as needed up to `size`.
struct Pool {
    url: String,
    size: usize,
    runtime: tokio::runtime::Handle,
    idle: Mutex<(Vec<Connection>, usize)>,
    returned: Condvar,
}

/// A connection taken from the pool, given back when dropped (unless it broke).
struct Taken<'a> {
    pool: &'a Pool,
    connection: Option<Connection>,
}

impl std::ops::Deref for Taken<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection.as_ref().expect("held until dropped")
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        let connection = self.connection.take().expect("held until dropped");
        let mut idle = self.pool.idle.lock().expect("pool lock");
        if connection.client.is_closed() {
            idle.1 -= 1;
        } else {
            idle.0.push(connection);
        }
        self.pool.returned.notify_one();
    }
}

impl Pool {
    fn take(&self) -> StoreResult<Taken<'_>> {
        let mut idle = self.idle.lock().expect("pool lock");
        loop {
            if let Some(connection) = idle.0.pop() {
                return Ok(Taken { pool: self, connection: Some(connection) });
            }
            if idle.1 < self.size {
                idle.1 += 1;
                drop(idle);
                return match self.connect() {
                    Ok(connection) => Ok(Taken { pool: self, connection: Some(connection) }),
                    Err(e) => {
                        self.idle.lock().expect("pool lock").1 -= 1;
                        Err(e)
                    }
                };
            }
            idle = self.returned.wait(idle).expect("pool lock");
        }
    }

    fn connect(&self) -> StoreResult<Connection> {
        let url = self.url.clone();
        // Connected on the backend's runtime (its socket belongs there), waited for from here.
        let connecting = self.runtime.spawn(async move { tokio_postgres::connect(&url, NoTls).await });
        let (client, connection) = wait(connecting).expect("the database runtime runs its tasks")?;
        self.runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "a PostgreSQL connection ended");
            }
        });
        Ok(Connection { client, prepared: RefCell::default() })
    }
}

pub struct Postgres {
    pool: Arc<Pool>,
    /// Drives the connections; shut down in the background when the backend goes (dropping a
    /// runtime inside another one would panic).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where a tree's keys hold their tenant.
#[derive(Clone, Copy)]
enum Layout {
    /// Up to the first `/` or NUL.
    TenantFirst,
    /// After an 8-byte time, up to the first NUL.
    TimeFirst,
    /// The key is the tenant's id.
    TenantId,
    /// Not a tenant's: the platform's (keys, sessions, compiled code, the outbox).
    Platform,
}

impl Layout {
    fn of(tree: &str) -> Layout {
        match tree {
            "tenants" => Layout::TenantId,
            "timers" | "delivery_queue" | "changes" => Layout::TimeFirst,
            "api_keys" | "sessions" | "compiled_functions" | "system_events" => Layout::Platform,
            _ => Layout::TenantFirst,
        }
    }

    fn tenant(self, key: &[u8]) -> String {
        let key = match self {
            Layout::Platform => return String::new(),
            Layout::TenantId => key,
            Layout::TenantFirst => key.split(|b| *b == b'/' || *b == 0).next().unwrap_or_default(),
            Layout::TimeFirst => key.get(8..).unwrap_or_default().split(|b| *b == 0).next().unwrap_or_default(),
        };
        String::from_utf8_lossy(key).into_owned()
    }
}

/// The channel nodes hear of new work on (`Membership::listen`): `tree:tenant`.
const WORK_CHANNEL: &str = "klaxon_work";

/// One tree's table and the statements on it.
struct Table {
    name: String,
    layout: Layout,
    /// Writes to it are work other nodes hear of.
    holds_work: bool,
    get: String,
    get_many: String,
    first: String,
    forward: String,
    backward: String,
    upsert: String,
    upsert_old: String,
    delete: String,
    delete_many: String,
}

impl Table {
    fn new(tree: &str) -> Table {
        let t = format!("kv_{tree}");
        Table {
            name: tree.to_string(),
            layout: Layout::of(tree),
            holds_work: Written::of(tree).is_some(),
            get: format!("SELECT value FROM {t} WHERE tenant_id = $1 AND key = $2"),
            // One primary-key lookup per key, whatever the planner thinks of the table's size:
            // as `key = ANY($2)`, or as a join it may flatten, a plan made while the table was
            // small scanned all of the tenant's rows (milliseconds per read once it held
            // thousands). `OFFSET 0` keeps the lookup a subquery run once per key.
            get_many: format!(
                "SELECT found.key, found.value FROM unnest($2::bytea[]) AS wanted(key), \
                 LATERAL (SELECT key, value FROM {t} WHERE tenant_id = $1 AND key = wanted.key OFFSET 0) AS found"
            ),
            first: format!("SELECT 1 FROM {t} LIMIT 1"),
            forward: format!(
                "SELECT key, value FROM {t} WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key LIMIT $3"
            ),
            backward: format!(
                "SELECT key, value FROM {t} WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key DESC LIMIT $3"
            ),
            upsert: format!(
                "INSERT INTO {t} (tenant_id, key, value) SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[]) \
                 ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value"
            ),
            upsert_old: format!(
                "WITH old AS (SELECT value FROM {t} WHERE tenant_id = $1 AND key = $2 FOR UPDATE), \
                 new AS (INSERT INTO {t} (tenant_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value) SELECT value FROM old"
            ),
            delete: format!("DELETE FROM {t} WHERE tenant_id = $1 AND key = $2 RETURNING value"),
            delete_many: format!(
                "DELETE FROM {t} WHERE (tenant_id, key) IN (SELECT * FROM unnest($1::text[], $2::bytea[]))"
            ),
        }
    }

    /// Tells the listening nodes of work written for `tenants` (sent when the transaction
    /// commits).
    fn announce(&self, connection: &Connection, tenants: &[&str]) -> Result<(), tokio_postgres::Error> {
        if !self.holds_work || tenants.is_empty() {
            return Ok(());
        }
        let mut payloads: Vec<String> = tenants.iter().map(|tenant| format!("{}:{tenant}", self.name)).collect();
        payloads.sort();
        payloads.dedup();
        let sql = format!("SELECT pg_notify('{WORK_CHANNEL}', p) FROM unnest($1::text[]) AS p");
        connection.query(&sql, &[&payloads]).map(drop)
    }

    fn create(tree: &str) -> String {
        let t = format!("kv_{tree}");
        format!(
            "CREATE TABLE IF NOT EXISTS {t} (tenant_id text NOT NULL, key bytea NOT NULL, value bytea NOT NULL, \
             PRIMARY KEY (tenant_id, key)); CREATE INDEX IF NOT EXISTS {t}_by_key ON {t} (key)"
        )
    }
}

struct Tree {
    table: Arc<Table>,
    pool: Arc<Pool>,
}

fn value(rows: Vec<tokio_postgres::Row>) -> Option<Bytes> {
    rows.into_iter().next().map(|row| row.get(0))
}

/// The smallest key after every key that starts with `prefix` (none: no key is).
fn after_prefix(prefix: &[u8]) -> Option<Bytes> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The smallest key after `key`.
fn just_after(key: &[u8]) -> Bytes {
    [key, &[0]].concat()
}

impl Keyspace for Tree {
    fn name(&self) -> &str {
        &self.table.name
    }

    fn get(&self, key: &[u8]) -> StoreResult<Option<Bytes>> {
        let tenant = self.table.layout.tenant(key);
        Ok(value(self.pool.take()?.query(&self.table.get, &[&tenant, &key])?))
    }

    fn is_empty(&self) -> StoreResult<bool> {
        Ok(self.pool.take()?.query(&self.table.first, &[])?.is_empty())
    }

    fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> EntryIter {
        let low = match start {
            Bound::Included(key) => key.to_vec(),
            Bound::Excluded(key) => just_after(key),
            Bound::Unbounded => Vec::new(),
        };
        let high = match end {
            Bound::Included(key) => Some(just_after(key)),
            Bound::Excluded(key) => Some(key.to_vec()),
            Bound::Unbounded => None,
        };
        Box::new(Pages::new(self.table.clone(), self.pool.clone(), low, high))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> EntryIter {
        Box::new(Pages::new(self.table.clone(), self.pool.clone(), prefix.to_vec(), after_prefix(prefix)))
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> StoreResult<Option<Bytes>> {
        let tenant = self.table.layout.tenant(key);
        let connection = self.pool.take()?;
        let old = self::value(connection.query(&self.table.upsert_old, &[&tenant, &key, &value])?);
        self.table.announce(&connection, &[&tenant])?;
        Ok(old)
    }

    fn remove(&self, key: &[u8]) -> StoreResult<Option<Bytes>> {
        let tenant = self.table.layout.tenant(key);
        Ok(value(self.pool.take()?.query(&self.table.delete, &[&tenant, &key])?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Entries of `[low, high)` in key order, read a page at a time from either end. Each page read
/// narrows the range to what neither end has read yet, so the ends never read an entry twice.
struct Pages {
    table: Arc<Table>,
    pool: Arc<Pool>,
    low: Bytes,
    /// None: no upper bound.
    high: Option<Bytes>,
    front: VecDeque<(Bytes, Bytes)>,
    back: VecDeque<(Bytes, Bytes)>,
    /// Nothing is left between `low` and `high`.
    exhausted: bool,
    page: i64,
    failed: bool,
}

impl Pages {
    fn new(table: Arc<Table>, pool: Arc<Pool>, low: Bytes, high: Option<Bytes>) -> Self {
        let exhausted = high.as_ref().is_some_and(|high| *high <= low);
        Pages {
            table,
            pool,
            low,
            high,
            front: VecDeque::new(),
            back: VecDeque::new(),
            exhausted,
            page: FIRST_PAGE,
            failed: false,
        }
    }

    /// Reads the next page from the front (or the back).
    fn read(&mut self, from_back: bool) -> StoreResult<()> {
        let sql = if from_back { &self.table.backward } else { &self.table.forward };
        let rows = self.pool.take()?.query(sql, &[&self.low, &self.high, &self.page])?;
        if (rows.len() as i64) < self.page {
            self.exhausted = true;
        }
        self.page = (self.page * 2).min(LARGEST_PAGE);
        let entries = rows.into_iter().map(|row| (row.get::<_, Bytes>(0), row.get::<_, Bytes>(1)));
        if from_back {
            self.back.extend(entries);
            if let Some((key, _)) = self.back.back() {
                self.high = Some(key.clone());
            }
        } else {
            self.front.extend(entries);
            if let Some((key, _)) = self.front.back() {
                self.low = just_after(key);
            }
        }
        Ok(())
    }

    fn next_from(&mut self, from_back: bool) -> Option<StoreResult<(Bytes, Bytes)>> {
        if self.failed {
            return None;
        }
        let own_empty = if from_back { self.back.is_empty() } else { self.front.is_empty() };
        if own_empty
            && !self.exhausted
            && let Err(e) = self.read(from_back)
        {
            self.failed = true;
            return Some(Err(e));
        }
        // Once the range is read, what the other end read is all that is left.
        if from_back {
            self.back.pop_front().or_else(|| self.front.pop_back()).map(Ok)
        } else {
            self.front.pop_front().or_else(|| self.back.pop_back()).map(Ok)
        }
    }
}

impl Iterator for Pages {
    type Item = StoreResult<(Bytes, Bytes)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_from(false)
    }
}

impl DoubleEndedIterator for Pages {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.next_from(true)
    }
}

/// One tree in a transaction: its writes wait here until the commit, and what it read is kept
/// (the transaction's snapshot does not change).
struct TxTree<'a> {
    table: &'a Table,
    connection: &'a Connection,
    /// Key -> the value written, or none: removed.
    writes: RefCell<BTreeMap<Bytes, Option<Bytes>>>,
    /// Key -> the value read, or none: absent.
    reads: RefCell<HashMap<Bytes, Option<Bytes>>>,
}

impl TxTree<'_> {
    fn read(&self, key: &[u8]) -> TxResult<Option<Bytes>> {
        if let Some(written) = self.writes.borrow().get(key) {
            return Ok(written.clone());
        }
        if let Some(read) = self.reads.borrow().get(key) {
            return Ok(read.clone());
        }
        let tenant = self.table.layout.tenant(key);
        let read = value(self.connection.query(&self.table.get, &[&tenant, &key])?);
        self.reads.borrow_mut().insert(key.to_vec(), read.clone());
        Ok(read)
    }

    /// Sends the waiting writes: one statement for the upserts, one for the removals.
    fn write(&self) -> TxResult<()> {
        let writes = self.writes.borrow();
        let (mut tenants, mut keys, mut values) = (Vec::new(), Vec::new(), Vec::new());
        let (mut gone_tenants, mut gone_keys) = (Vec::new(), Vec::new());
        for (key, value) in writes.iter() {
            let tenant = self.table.layout.tenant(key);
            match value {
                Some(value) => {
                    tenants.push(tenant);
                    keys.push(key.as_slice());
                    values.push(value.as_slice());
                }
                None => {
                    gone_tenants.push(tenant);
                    gone_keys.push(key.as_slice());
                }
            }
        }
        if !keys.is_empty() {
            self.connection.execute(&self.table.upsert, &[&tenants, &keys, &values])?;
            let tenants: Vec<&str> = tenants.iter().map(String::as_str).collect();
            self.table.announce(self.connection, &tenants)?;
        }
        if !gone_keys.is_empty() {
            self.connection.execute(&self.table.delete_many, &[&gone_tenants, &gone_keys])?;
        }
        Ok(())
    }
}

impl TxKeyspace for TxTree<'_> {
    fn get(&self, key: &[u8]) -> TxResult<Option<Bytes>> {
        self.read(key)
    }

    fn prefetch(&self, keys: &[Bytes]) -> TxResult<()> {
        let unknown: Vec<&Bytes> = {
            let (writes, reads) = (self.writes.borrow(), self.reads.borrow());
            keys.iter().filter(|key| !writes.contains_key(*key) && !reads.contains_key(*key)).collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        // One query per tenant (a round's keys are all one tenant's): the primary key's index
        // serves `key = ANY(...)` within it.
        let mut by_tenant: BTreeMap<String, Vec<&Bytes>> = BTreeMap::new();
        for key in unknown {
            by_tenant.entry(self.table.layout.tenant(key)).or_default().push(key);
        }
        let mut reads = self.reads.borrow_mut();
        for (tenant, keys) in by_tenant {
            let rows = self.connection.query(&self.table.get_many, &[&tenant, &keys])?;
            for key in keys {
                reads.insert(key.clone(), None);
            }
            for row in rows {
                reads.insert(row.get(0), Some(row.get(1)));
            }
        }
        Ok(())
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> TxResult<()> {
        self.writes.borrow_mut().insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    fn remove(&self, key: &[u8]) -> TxResult<Option<Bytes>> {
        let old = self.read(key)?;
        self.writes.borrow_mut().insert(key.to_vec(), None);
        Ok(old)
    }
}

impl Postgres {
    /// Connects to the database at `url` (at most `pool` connections) and brings its schema up
    /// to date.
    pub fn connect(url: &str, pool: usize) -> StoreResult<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("klaxon-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("starting the PostgreSQL client: {e}")))?;
        let pool = Arc::new(Pool {
            url: url.to_string(),
            size: pool.max(1),
            runtime: runtime.handle().clone(),
            idle: Mutex::new((Vec::new(), 0)),
            returned: Condvar::new(),
        });
        let postgres = Postgres { pool, runtime: Some(runtime) };
        postgres.migrate()?;
        Ok(postgres)
    }

    /// Runs the migrations this database has not had, under a lock all nodes share.
    fn migrate(&self) -> StoreResult<()> {
        self.schema_change(|c| {
            wait(c.client.batch_execute(
                "CREATE TABLE IF NOT EXISTS klaxon_migrations (version integer PRIMARY KEY, \
                 applied_at timestamptz NOT NULL DEFAULT now())",
            ))?;
            let done: Vec<i32> =
                c.query("SELECT version FROM klaxon_migrations", &[])?.iter().map(|row| row.get(0)).collect();
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !done.contains(v)) {
                wait(c.client.batch_execute(sql))?;
                c.execute("INSERT INTO klaxon_migrations (version) VALUES ($1)", &[version])?;
                tracing::info!(version, "PostgreSQL schema migrated");
            }
            Ok(())
        })
    }

    /// Runs `change` holding the schema lock.
    fn schema_change(&self, change: impl FnOnce(&Connection) -> StoreResult<()>) -> StoreResult<()> {
        let connection = self.pool.take()?;
        connection.execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK])?;
        let changed = change(&connection);
        connection.execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK])?;
        changed
    }

    fn transact_once(
        &self,
        trees: &[&dyn Keyspace],
        fence: Option<&Fence>,
        body: &dyn Fn(&[&dyn TxKeyspace]) -> TxResult<()>,
    ) -> TxResult<()> {
        let connection = self.pool.take().map_err(TxError::Abort)?;
        wait(connection.client.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE"))?;
        let run = || -> TxResult<()> {
            let views: Vec<TxTree> = trees
                .iter()
                .map(|tree| TxTree {
                    table: &tree.as_any().downcast_ref::<Tree>().expect("a tree of this database").table,
                    connection: &connection,
                    writes: RefCell::default(),
                    reads: RefCell::default(),
                })
                .collect();
            let dyn_views: Vec<&dyn TxKeyspace> = views.iter().map(|view| view as &dyn TxKeyspace).collect();
            body(&dyn_views)?;
            for view in &views {
                view.write()?;
            }
            if let Some(fence) = fence {
                hold_fence(&connection, fence)?;
            }
            wait(connection.client.batch_execute("COMMIT"))?;
            Ok(())
        };
        let done = run();
        if done.is_err() && !connection.client.is_closed() {
            // Ends the transaction whatever state it is in; a broken connection is dropped.
            let _ = wait(connection.client.batch_execute("ROLLBACK"));
        }
        done
    }
}

impl Backend for Postgres {
    fn open_tree(&self, name: &str) -> StoreResult<Arc<dyn Keyspace>> {
        self.schema_change(|c| Ok(wait(c.client.batch_execute(&Table::create(name)))?))?;
        Ok(Arc::new(Tree { table: Arc::new(Table::new(name)), pool: self.pool.clone() }))
    }

    fn drop_tree(&self, name: &str) -> StoreResult<()> {
        self.schema_change(|c| Ok(wait(c.client.batch_execute(&format!("DROP TABLE IF EXISTS kv_{name}")))?))
    }

    fn transaction(
        &self,
        trees: &[&dyn Keyspace],
        fence: Option<&Fence>,
        body: &dyn Fn(&[&dyn TxKeyspace]) -> TxResult<()>,
    ) -> StoreResult<()> {
        loop {
            match self.transact_once(trees, fence, body) {
                Ok(()) => return Ok(()),
                Err(TxError::Abort(e)) => return Err(e),
                Err(TxError::Conflict) => continue,
            }
        }
    }

    fn generate_id(&self) -> StoreResult<u64> {
        let rows = self.pool.take()?.query("SELECT nextval('klaxon_ids')", &[])?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }

    fn ids_above(&self, past: u64) -> StoreResult<()> {
        let past = i64::try_from(past).map_err(|_| StoreError::Refused(format!("id {past} is past PostgreSQL's")))?;
        self.pool
            .take()?
            .query("SELECT setval('klaxon_ids', greatest($1, (SELECT last_value FROM klaxon_ids)))", &[&past])?;
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn membership(&self) -> Option<&dyn Membership> {
        Some(self)
    }
}

/// Checks, just before a transaction commits, that its node still holds the fence's partition
/// at the fence's epoch, and locks the lease's row so it cannot change hands until the commit
/// (a node taking it waits; a change since the transaction began is a serialization failure,
/// and the transaction runs again).
fn hold_fence(connection: &Connection, fence: &Fence) -> TxResult<()> {
    let Lease { partition, epoch } = fence.lease;
    let held = connection.query(
        "SELECT 1 FROM klaxon_partitions WHERE partition = $1 AND node = $2 AND epoch = $3 FOR SHARE",
        &[&i32::from(partition), &fence.node, &(epoch as i64)],
    )?;
    if held.is_empty() {
        return Err(TxError::Abort(StoreError::Fenced { partition, epoch }));
    }
    Ok(())
}

/// Seconds, as PostgreSQL's intervals take them.
fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// A lease from a row's `partition` and `epoch` columns, at `at` and the next.
fn lease_at(row: &tokio_postgres::Row, at: usize) -> Lease {
    Lease { partition: row.get::<_, i32>(at) as u16, epoch: row.get::<_, i64>(at + 1) as u64 }
}

fn timestamp(micros: i64) -> StoreResult<Timestamp> {
    Timestamp::from_microsecond(micros)
        .map_err(|e| StoreError::Backend(format!("PostgreSQL: a time out of range: {e}")))
}

impl Membership for Postgres {
    fn heartbeat(&self, node: &str, address: &str, live: Duration) -> StoreResult<Vec<Peer>> {
        let c = self.pool.take()?;
        c.execute(
            "INSERT INTO klaxon_nodes (node, address, started_at, heartbeat_at) VALUES ($1, $2, now(), now()) \
             ON CONFLICT (node) DO UPDATE SET address = excluded.address, heartbeat_at = now()",
            &[&node, &address],
        )?;
        c.execute(&format!("DELETE FROM klaxon_nodes WHERE heartbeat_at < now() - interval '{FORGOTTEN_AFTER}'"), &[])?;
        let rows = c.query(
            "SELECT node, address FROM klaxon_nodes WHERE heartbeat_at > now() - make_interval(secs => $1) ORDER BY node",
            &[&seconds(live)],
        )?;
        Ok(rows.iter().map(|row| Peer { node: row.get(0), address: row.get(1) }).collect())
    }

    fn hold(&self, node: &str, wanted: &[u16], lease: Duration) -> StoreResult<Vec<Lease>> {
        let c = self.pool.take()?;
        let wanted: Vec<i32> = wanted.iter().map(|p| i32::from(*p)).collect();
        c.execute(
            "UPDATE klaxon_partitions SET expires_at = now() \
             WHERE node = $1 AND NOT (partition = ANY($2)) AND expires_at > now()",
            &[&node, &wanted],
        )?;
        let rows = c.query(
            "INSERT INTO klaxon_partitions AS p (partition, node, epoch, renewed_at, expires_at) \
             SELECT w, $1, 1, now(), now() + make_interval(secs => $3) FROM unnest($2::integer[]) AS w \
             ON CONFLICT (partition) DO UPDATE SET \
               epoch = CASE WHEN p.node = excluded.node THEN p.epoch ELSE p.epoch + 1 END, \
               node = excluded.node, renewed_at = now(), expires_at = excluded.expires_at \
             WHERE p.node = excluded.node OR p.expires_at <= now() \
             RETURNING partition, epoch",
            &[&node, &wanted, &seconds(lease)],
        )?;
        let mut held: Vec<Lease> = rows.iter().map(|row| lease_at(row, 0)).collect();
        held.sort_by_key(|lease| lease.partition);
        Ok(held)
    }

    fn listen(&self, wake: Wake) {
        let url = self.pool.url.clone();
        let wake = Arc::new(wake);
        self.pool.runtime.spawn(async move {
            loop {
                match tokio_postgres::connect(&url, NoTls).await {
                    Ok((client, mut connection)) => {
                        let listen = async {
                            if let Err(e) = client.batch_execute(&format!("LISTEN {WORK_CHANNEL}")).await {
                                tracing::warn!(error = %e, "listening for work failed");
                            }
                        };
                        let hear = async {
                            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                                match message {
                                    Ok(AsyncMessage::Notification(n)) => {
                                        let (tree, tenant) = n.payload().split_once(':').unwrap_or((n.payload(), ""));
                                        if let Some(written) = Written::of(tree) {
                                            // Off this runtime's thread: `wake` may use the
                                            // store, whose connections this thread drives.
                                            let (wake, tenant) = (wake.clone(), tenant.to_string());
                                            tokio::task::spawn_blocking(move || wake(written, &tenant));
                                        }
                                    }
                                    Ok(_) => {}
                                    Err(e) => {
                                        tracing::warn!(error = %e, "the connection listening for work ended");
                                        break;
                                    }
                                }
                            }
                        };
                        tokio::join!(listen, hear);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot connect to listen for work"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    fn members(&self, within: Duration) -> StoreResult<Vec<Member>> {
        let c = self.pool.take()?;
        let micros = |column: &str| format!("(extract(epoch from {column}) * 1000000)::bigint");
        let nodes = c.query(
            &format!(
                "SELECT node, address, {}, {} FROM klaxon_nodes \
                 WHERE heartbeat_at > now() - make_interval(secs => $1) ORDER BY node",
                micros("started_at"),
                micros("heartbeat_at")
            ),
            &[&seconds(within)],
        )?;
        let leases = c.query(
            &format!(
                "SELECT node, partition, epoch, {} FROM klaxon_partitions WHERE expires_at > now() ORDER BY partition",
                micros("renewed_at")
            ),
            &[],
        )?;
        let mut members = Vec::with_capacity(nodes.len());
        for row in &nodes {
            let node: String = row.get(0);
            let held: Vec<&tokio_postgres::Row> = leases.iter().filter(|l| l.get::<_, &str>(0) == node).collect();
            let renewed_at = match held.iter().map(|l| l.get::<_, i64>(3)).min() {
                Some(micros) => Some(timestamp(micros)?),
                None => None,
            };
            members.push(Member {
                leases: held.iter().map(|l| lease_at(l, 1)).collect(),
                address: row.get(1),
                started_at: timestamp(row.get(2))?,
                heartbeat_at: timestamp(row.get(3))?,
                renewed_at,
                node,
            });
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_read_from_each_layout() {
        assert_eq!(Layout::of("customers").tenant(b"ten_1/cus_1"), "ten_1");
        assert_eq!(Layout::of("alerts").tenant(b"ten_1\0rule\0scope"), "ten_1");
        assert_eq!(Layout::of("timers").tenant(b"\x80\0\0\0\0\0\0\x01ten_1\0rule\0"), "ten_1");
        assert_eq!(Layout::of("tenants").tenant(b"ten_1"), "ten_1");
        assert_eq!(Layout::of("api_keys").tenant(b"key_1"), "");
    }

    #[test]
    fn a_write_under_a_lease_that_moved_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::connect(&klaxon_test_postgres::shared().database(), 4, dir.path()).unwrap();
        let membership = store.membership().expect("a shared database");
        let at = |seconds| Timestamp::from_second(seconds).unwrap();
        let timer = |fence: &Fence, seconds| {
            store.transact_under(Some(fence), |tx| tx.set_timer(at(seconds), "t", "rule", "", ""))
        };
        // A lease that lapses at once, so another node may take it.
        let held = membership.hold("node_a", &[7], Duration::ZERO).unwrap();
        let fence = Fence { node: "node_a".into(), lease: held[0] };
        timer(&fence, 1).expect("the holder writes");
        let taken = membership.hold("node_b", &[7], Duration::from_secs(60)).unwrap();
        assert_eq!(taken[0].epoch, held[0].epoch + 1, "the partition changed hands");

        let refused = timer(&fence, 2).unwrap_err();
        assert!(matches!(refused, StoreError::Fenced { partition: 7, epoch } if epoch == held[0].epoch), "{refused}");
        let kept = store.next_timer(|_| true).unwrap().unwrap();
        assert_eq!(kept.due, at(1), "only the write made under the lease");
        store.remove_timer(&kept).unwrap();
        assert!(store.next_timer(|_| true).unwrap().is_none(), "the refused write left nothing");
        timer(&Fence { node: "node_b".into(), lease: taken[0] }, 3).expect("the new holder writes");
    }

    #[test]
    fn a_prefix_ends_before_the_next_one() {
        assert_eq!(after_prefix(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(after_prefix(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(after_prefix(b"\xff\xff"), None);
    }
}
