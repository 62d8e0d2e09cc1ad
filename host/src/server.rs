//! Starting and stopping the server: data folder, admin token, storage, plugins, HTTP.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::alerts::Alerts;
use crate::api::AppState;
use crate::api::forward::Forwarder;
use crate::backtests::{self, Backtests};
use crate::channels::Channels;
use crate::clock::{ManualClock, SharedClock, SystemClock};
use crate::cluster::{Cluster, Due, Hooks};
use crate::cohorts::Cohorts;
use crate::config::Config;
use crate::console;
use crate::delivery::{self, Deliverer};
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::notifications::Notifications;
use crate::plugins::{CompileCache, Engine, Plugins, RegistryError};
use crate::rules::Rules;
use crate::store::{Store, StoreError, StoreResult};
use crate::tenants::{Tenants, keys};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data folder {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot start the plugin engine: {0}")]
    Engine(String),
    #[error("cannot start delivery: {0}")]
    Delivery(String),
    #[error("cannot load stored plugins: {0}")]
    Plugins(#[from] RegistryError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// What the cluster asks of this node: work written for its tenants looked at now, the due work
/// of partitions it takes (cohort computations a dead node left included), and what it caches
/// or compiled of a tenant forgotten when another node changed it.
fn hooks(state: &AppState, system_due: Arc<tokio::sync::Notify>) -> Hooks {
    let (alerts, deliverer) = (state.alerts.clone(), state.deliverer.clone());
    let due = move |due: Due| match due {
        Due::Deliveries => deliverer.wake(),
        Due::Timers => alerts.wake(),
        Due::Outbox => system_due.notify_one(),
    };
    let (cohorts, cluster) = (state.cohorts.clone(), state.cluster.clone());
    let gained = move || match cohorts.resume(|tenant| cluster.owns(tenant)) {
        Ok(0) => {}
        Ok(resumed) => tracing::info!(cohorts = resumed, "resuming cohort computations of partitions taken"),
        Err(e) => tracing::warn!(error = %e, "resuming cohort computations failed"),
    };
    let (alerts, cohorts, notifications, tenants, plugins, cluster) = (
        state.alerts.clone(),
        state.cohorts.clone(),
        state.notifications.clone(),
        state.tenants.clone(),
        state.plugins.clone(),
        state.cluster.clone(),
    );
    let changed = move |tenant: &str| {
        alerts.forget_tenant(tenant);
        cohorts.forget_tenant(tenant);
        tenants.forget(tenant);
        if let Err(e) = notifications.routing_changed(tenant) {
            tracing::warn!(%tenant, error = %e, "reading the tenant's routing again failed");
        }
        if let Err(e) = plugins.reconcile(tenant) {
            tracing::warn!(%tenant, error = %e, "bringing the tenant's plugins up to date failed");
        }
        // A cohort saved on another node is computed here, where its tenant is held.
        if cluster.owns(tenant)
            && let Err(e) = cohorts.resume(|t| t == tenant)
        {
            tracing::warn!(%tenant, error = %e, "starting cohort computations failed");
        }
    };
    Hooks { due: Box::new(due), gained: Box::new(gained), changed: Box::new(changed) }
}

/// The store the configuration names: PostgreSQL when it gives a URL (its schema brought up to
/// date), else the embedded database in the data folder.
pub fn open_store(config: &Config) -> StoreResult<Store> {
    match config.store.url.as_str() {
        "" => Store::open(&config.data_dir, config.cache_bytes),
        url => Store::connect(url, config.store.pool, &config.data_dir),
    }
}

/// Runs the server until SIGINT or SIGTERM, then drains requests and flushes the database.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let started = Instant::now();
    let data_dir = |source| ServeError::DataDir { path: config.data_dir.display().to_string(), source };
    std::fs::create_dir_all(&config.data_dir).map_err(data_dir)?;
    let admin_token = match &config.admin_token {
        Some(token) => token.clone(),
        None => stored_admin_token(&config.data_dir).map_err(data_dir)?,
    };

    let store = open_store(&config)?;
    let start = config.manual_clock_start.unwrap_or_else(jiff::Timestamp::now);
    let manual_clock = config.manual_clock.then(|| Arc::new(ManualClock::new(start)));
    let clock: SharedClock = match &manual_clock {
        Some(manual) => {
            tracing::warn!("the clock is manual: time moves only by PUT /v1/clock");
            manual.clone()
        }
        None => Arc::new(SystemClock),
    };
    let metrics = Arc::new(Metrics::default());
    let compile_cache = CompileCache::open(store.compiled_functions(), config.compile_cache_bytes);
    let engine = Arc::new(
        Engine::new(compile_cache, config.warm_instance_bytes).map_err(|e| ServeError::Engine(format!("{e:#}")))?,
    );
    let calls_per_second = Some(config.tenant_limits.plugin_calls_per_second);
    let plugins = Plugins::new(store.clone(), engine.clone(), clock.clone(), metrics.clone(), calls_per_second);
    let loaded = plugins.load_all().await?;
    tracing::info!(plugins = loaded, elapsed_ms = started.elapsed().as_millis() as u64, "plugins loaded");

    let ready = Arc::new(AtomicBool::new(true));
    let tenants = Tenants::new(store.clone(), &admin_token);
    let deliveries_due = Arc::new(tokio::sync::Notify::new());
    let system_due = Arc::new(tokio::sync::Notify::new());
    let cohorts = Arc::new(Cohorts::new(store.clone(), clock.clone(), config.ingest.event_retention.0));
    let cluster = Arc::new(Cluster::new(store.clone(), &config.cluster));
    let notifications = Arc::new(Notifications::new(store.clone(), clock.clone(), deliveries_due.clone()));
    let alerts = Arc::new(Alerts::new(
        store.clone(),
        tenants.clone(),
        plugins.clone(),
        cohorts.clone(),
        clock.clone(),
        notifications.clone(),
        cluster.clone(),
    )?);
    let ingest = Ingest::new(
        store.clone(),
        clock.clone(),
        alerts.clone(),
        cohorts.clone(),
        notifications.clone(),
        cluster.clone(),
        system_due.clone(),
    );
    let parts = delivery::Parts {
        store: store.clone(),
        cluster: cluster.clone(),
        tenants: tenants.clone(),
        plugins: plugins.clone(),
        clock: clock.clone(),
        metrics: metrics.clone(),
        wake: deliveries_due,
        system_due: system_due.clone(),
    };
    let deliverer =
        Arc::new(Deliverer::new(parts, &config.delivery, config.smtp.as_ref()).map_err(ServeError::Delivery)?);
    // Resumes the deliveries left pending by the last run, then sends as they come.
    deliverer.spawn();
    // Catches up on what fell due while the server was down, then keeps time.
    alerts.spawn_scheduler();
    // System events left in the outbox, cohort computations a stop interrupted, old events.
    ingest.spawn_system_events();
    let resumed = cohorts.resume(|tenant| cluster.owns(tenant))?;
    if resumed > 0 {
        tracing::info!(cohorts = resumed, "resuming cohort computations");
    }
    ingest.spawn_retention();
    let backtests = Arc::new(
        Backtests::new(backtests::Setting {
            store: store.clone(),
            engine,
            clock: clock.clone(),
            data_dir: config.data_dir.clone(),
            event_retention: config.ingest.event_retention.0,
            cluster: config.cluster.clone(),
        })
        .map_err(data_dir)?,
    );
    let state = AppState {
        config: Arc::new(config.clone()),
        store: store.clone(),
        tenants,
        plugins,
        ingest,
        rules: Rules::new(store.clone()),
        alerts,
        backtests,
        cohorts,
        notifications,
        cluster: cluster.clone(),
        forwarder: Arc::new(Forwarder::new(cluster.node())),
        channels: Channels::new(store.clone()),
        deliverer,
        clock,
        manual_clock,
        metrics,
        ready: ready.clone(),
        failures: Arc::default(),
        event_rates: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr()?;
    let advertise = match config.cluster.advertise.as_str() {
        "" if addr.ip().is_unspecified() => String::new(),
        "" => format!("http://{addr}"),
        url => url.trim_end_matches('/').to_string(),
    };
    cluster.spawn(advertise, hooks(&state, system_due));
    // Where a command line on this machine finds the server that holds the data folder
    // (`klaxon backup` while it runs).
    let address = config.data_dir.join("address");
    let local =
        SocketAddr::new(if addr.ip().is_unspecified() { Ipv4Addr::LOCALHOST.into() } else { addr.ip() }, addr.port());
    std::fs::write(&address, format!("http://{local}\n")).map_err(data_dir)?;
    tracing::info!(%addr, node = %cluster.node(), data_dir = %config.data_dir.display(), startup_ms = started.elapsed().as_millis() as u64, "listening");

    spawn_pruning(store.clone(), state.clock.clone(), config.audit.retention.0);
    spawn_stats_flushing(store.clone());
    axum::serve(listener, console::router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            ready.store(false, Ordering::Relaxed);
            tracing::info!("shutting down: finishing requests in flight");
        })
        .await?;
    if let Err(e) = store.flush_stats() {
        tracing::error!(error = %e, "the last stats could not be written");
    }
    store.flush().await?;
    let _ = std::fs::remove_file(&address);
    tracing::info!("database flushed; bye");
    Ok(())
}

/// How often the stats tallied in memory are written.
const STATS_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// Prunes the audit trails (every tenant's and the platform's) of entries past `retention`,
/// and the stats past `store::stats::KEPT`, now and every ten minutes.
fn spawn_pruning(store: Store, clock: SharedClock, retention: jiff::SignedDuration) {
    tokio::spawn(async move {
        loop {
            let (store, now) = (store.clone(), clock.now());
            let pruned = tokio::task::spawn_blocking(move || {
                let tenants = store.tenants.ids()?;
                let mut pruned = (0, 0);
                for tenant in tenants.iter().map(String::as_str).chain([""]) {
                    pruned.0 += store.prune_audit(tenant, now - retention)?;
                    pruned.1 += store.prune_stats(tenant, now - crate::store::stats::KEPT)?;
                }
                Ok::<_, crate::store::StoreError>(pruned)
            })
            .await;
            match pruned {
                Ok(Ok((0, 0))) => {}
                Ok(Ok((audit, stats))) => tracing::info!(audit, stats, "old audit entries and stats pruned"),
                Ok(Err(e)) => tracing::error!(error = %e, "pruning the audit trails and stats failed"),
                Err(e) => tracing::error!(error = %e, "pruning the audit trails and stats failed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        }
    });
}

/// Writes the stats tallied in memory every `STATS_FLUSH`.
fn spawn_stats_flushing(store: Store) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(STATS_FLUSH).await;
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.flush_stats()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "writing the stats failed"),
                Err(e) => tracing::error!(error = %e, "writing the stats failed"),
            }
        }
    });
}

/// The admin token kept in the data folder, generated (mode 0600) on first start. Its path is
/// logged, never the token.
fn stored_admin_token(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(token) => Ok(token.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = format!("klxadm_{}", keys::new_secret());
            write_private(&path, &token)?;
            tracing::info!(path = %path.display(), "generated the platform admin token");
            Ok(token)
        }
        Err(e) => Err(e),
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
