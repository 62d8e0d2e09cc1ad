//! Incidents: an outage or a maintenance with a lifecycle and a timeline. Each update notifies
//! the subscribers of the incident's category (an `incident` or `maintenance` notification,
//! routed like any other). Incidents are opened by clients, by rules with `incident: true` (on
//! `in_alarm`, resolved on `ok`), and by Klaxon itself for its configuration (a channel it
//! disabled, a plugin failing its calls). A maintenance is announced when created and notifies
//! again when its window starts and ends (scheduler timers).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::routing::TenantRouting;
use crate::context::{IncidentKind, IncidentRef, IncidentStatus, RuleRef, Severity};
use crate::error::{Invalid, invalid};
use crate::records::notification::{Kind, Notification};
use crate::records::{Event, system};
use crate::store::{self, Tx, TxResult};

const MAX_TITLE_BYTES: usize = 200;
const MAX_MESSAGE_BYTES: usize = 4000;
const MAX_COMPONENTS: usize = 20;
const MAX_COMPONENT_BYTES: usize = 100;
/// The category of incidents Klaxon raises about a tenant's own configuration.
pub const CONFIGURATION: &str = "configuration";
/// The categories whose incidents are public unless opened with `public: false`.
const PUBLIC_BY_DEFAULT: [&str; 2] = ["infrastructure", "billing"];
/// Incident ids start with this (and so do the scheduler timers of maintenance windows).
pub const PREFIX: &str = "inc_";
/// The scopes of a maintenance's timers.
pub const START: &str = "start";
pub const END: &str = "end";

/// An incident as a client opens it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentSpec {
    #[serde(default = "incident")]
    pub kind: IncidentKind,
    pub title: String,
    pub category: String,
    /// `warning` for an incident, `info` for a maintenance when absent.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// The affected components or regions.
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// The first status: `investigating` (incident) or `scheduled` (maintenance) when absent.
    #[serde(default)]
    pub status: Option<IncidentStatus>,
    /// A maintenance's window.
    #[serde(default)]
    pub starts_at: Option<Timestamp>,
    #[serde(default)]
    pub ends_at: Option<Timestamp>,
    /// Shown on the tenant's status page: true by default for `infrastructure` and `billing`,
    /// never for `configuration`.
    #[serde(default)]
    pub public: Option<bool>,
}

fn incident() -> IncidentKind {
    IncidentKind::Incident
}

/// `POST /v1/incidents/{id}/updates`: a new status, a message, or both.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateInput {
    #[serde(default)]
    pub status: Option<IncidentStatus>,
    #[serde(default)]
    pub message: Option<String>,
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Update {
    pub at: Timestamp,
    pub status: IncidentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<IncidentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The key that wrote it, `rule:<id>` or `klaxon`.
    pub by: String,
    /// The notification that told subscribers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub kind: IncidentKind,
    pub title: String,
    pub category: String,
    pub severity: Severity,
    pub components: Vec<String>,
    pub status: IncidentStatus,
    /// Shown on the tenant's status page.
    #[serde(default)]
    pub public: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// The rule whose alert opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// What opened it (`alert/<rule>/<scope key>`, `channel/<id>`, `plugin/<name>`): a source
    /// has at most one open incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    pub timeline: Vec<Update>,
}

/// Which incidents a listing wants, newest first.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub status: Option<IncidentStatus>,
    pub category: Option<String>,
    pub kind: Option<IncidentKind>,
    /// Only those opened at or after this time.
    pub since: Option<Timestamp>,
    /// Only those opened before this time.
    pub until: Option<Timestamp>,
    pub limit: Option<usize>,
}

pub const MAX_PAGE: usize = 500;

fn allowed(kind: IncidentKind, status: IncidentStatus) -> bool {
    use IncidentStatus::*;
    match kind {
        IncidentKind::Incident => matches!(status, Investigating | Identified | Monitoring | Resolved),
        IncidentKind::Maintenance => matches!(status, Scheduled | InProgress | Resolved),
    }
}

fn check_status(field: &str, kind: IncidentKind, status: IncidentStatus) -> Result<(), Invalid> {
    if allowed(kind, status) {
        return Ok(());
    }
    Err(invalid(
        field,
        match kind {
            IncidentKind::Incident => "an incident's status is investigating, identified, monitoring or resolved",
            IncidentKind::Maintenance => "a maintenance's status is scheduled, in_progress or resolved",
        },
    ))
}

fn check_message(message: &Option<String>) -> Result<(), Invalid> {
    if message.as_ref().is_some_and(|m| m.trim().is_empty() || m.len() > MAX_MESSAGE_BYTES) {
        return Err(invalid("message", format!("must be 1 to {MAX_MESSAGE_BYTES} bytes")));
    }
    Ok(())
}

impl IncidentSpec {
    /// Every check that needs nothing but the spec (that its category exists is the caller's).
    pub fn check(&self, now: Timestamp) -> Result<(), Invalid> {
        if self.title.trim().is_empty() || self.title.len() > MAX_TITLE_BYTES {
            return Err(invalid("title", format!("must be 1 to {MAX_TITLE_BYTES} bytes")));
        }
        super::categories::check_name("category", &self.category)?;
        if self.components.len() > MAX_COMPONENTS {
            return Err(invalid("components", format!("at most {MAX_COMPONENTS}")));
        }
        for (i, c) in self.components.iter().enumerate() {
            if c.trim().is_empty() || c.len() > MAX_COMPONENT_BYTES {
                return Err(invalid(format!("components[{i}]"), format!("must be 1 to {MAX_COMPONENT_BYTES} bytes")));
            }
        }
        check_message(&self.message)?;
        if self.public == Some(true) && self.category == CONFIGURATION {
            return Err(invalid("public", "configuration incidents are about Klaxon's setup and are never public"));
        }
        if let Some(status) = self.status {
            check_status("status", self.kind, status)?;
            if status == IncidentStatus::Resolved {
                return Err(invalid("status", "an incident cannot be opened resolved"));
            }
        }
        match (self.kind, self.starts_at, self.ends_at) {
            (IncidentKind::Incident, None, None) => Ok(()),
            (IncidentKind::Incident, ..) => Err(invalid("starts_at", "only a maintenance has a window")),
            (IncidentKind::Maintenance, Some(start), Some(end)) => super::check_window(start, end, now),
            (IncidentKind::Maintenance, None, _) => Err(invalid("starts_at", "a maintenance needs its window")),
            (IncidentKind::Maintenance, _, None) => Err(invalid("ends_at", "a maintenance needs its window")),
        }
    }
}

impl UpdateInput {
    pub fn check(&self, incident: &Incident) -> Result<(), Invalid> {
        if self.status.is_none() && self.message.is_none() {
            return Err(invalid("status", "give a new `status`, a `message`, or both"));
        }
        if let Some(status) = self.status {
            check_status("status", incident.kind, status)?;
        }
        check_message(&self.message)
    }
}

/// A fresh id that sorts by creation.
pub fn new_id(now: Timestamp) -> String {
    format!("{PREFIX}{:016x}{:08x}", crate::clock::sequence(now), rand::random::<u32>())
}

/// What may hold one open incident: an alert (`alert`, `rule/scope key`), a channel, a plugin.
pub fn source(what: &str, id: &str) -> String {
    format!("{what}/{id}")
}

impl Incident {
    /// A new incident, with the first entry of its timeline (its notification set by `notify`).
    pub fn open(id: String, spec: &IncidentSpec, by: &str, now: Timestamp) -> Incident {
        let status = spec.status.unwrap_or(match spec.kind {
            IncidentKind::Incident => IncidentStatus::Investigating,
            IncidentKind::Maintenance => IncidentStatus::Scheduled,
        });
        let severity = spec.severity.unwrap_or(match spec.kind {
            IncidentKind::Incident => Severity::Warning,
            IncidentKind::Maintenance => Severity::Info,
        });
        Incident {
            id,
            kind: spec.kind,
            title: spec.title.trim().to_string(),
            category: spec.category.clone(),
            severity,
            components: spec.components.clone(),
            status,
            public: spec.public.unwrap_or(PUBLIC_BY_DEFAULT.contains(&spec.category.as_str())),
            starts_at: spec.starts_at,
            ends_at: spec.ends_at,
            rule_id: None,
            customer_id: None,
            source: None,
            created_by: by.to_string(),
            created_at: now,
            updated_at: now,
            resolved_at: None,
            timeline: vec![Update {
                at: now,
                status,
                previous_status: None,
                message: spec.message.clone(),
                by: by.to_string(),
                notification_id: None,
            }],
        }
    }

    /// Adds an update to the timeline; answers whether it resolved the incident.
    pub fn update(&mut self, input: &UpdateInput, by: &str, now: Timestamp) -> bool {
        let previous = self.status;
        let status = input.status.unwrap_or(previous);
        self.status = status;
        self.updated_at = now;
        let resolved = status == IncidentStatus::Resolved && previous != IncidentStatus::Resolved;
        if resolved {
            self.resolved_at = Some(now);
        }
        self.timeline.push(Update {
            at: now,
            status,
            previous_status: (previous != status).then_some(previous),
            message: input.message.clone(),
            by: by.to_string(),
            notification_id: None,
        });
        resolved
    }

    /// The context an incident's notification carries, as of its latest update.
    pub fn to_ref(&self) -> IncidentRef {
        let latest = self.timeline.last();
        IncidentRef {
            id: self.id.clone(),
            kind: self.kind,
            title: self.title.clone(),
            status: self.status,
            previous_status: latest.and_then(|u| u.previous_status),
            components: self.components.clone(),
            message: latest.and_then(|u| u.message.clone()),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            url: format!("/v1/incidents/{}", self.id),
        }
    }

    /// The notification of the latest update, for the category's subscribers; recorded on the
    /// update.
    pub fn notify(&mut self, tenant: &str, now: Timestamp) -> Notification {
        let kind = match self.kind {
            IncidentKind::Incident => Kind::Incident,
            IncidentKind::Maintenance => Kind::Maintenance,
        };
        let rule = RuleRef {
            id: self.rule_id.clone().unwrap_or_default(),
            name: self.title.clone(),
            severity: self.severity,
            category: Some(self.category.clone()),
        };
        let mut n = Notification::new(tenant, kind, rule, now);
        if let Some(latest) = self.timeline.last_mut() {
            latest.notification_id = Some(n.id.clone());
        }
        n.incident_id = Some(self.id.clone());
        n.customer_id = self.customer_id.clone();
        n.message = self.timeline.last().and_then(|u| u.message.clone());
        n.context.incident = Some(self.to_ref());
        n
    }

    pub fn is_open(&self) -> bool {
        self.status != IncidentStatus::Resolved
    }
}

pub fn get(tx: &Tx, tenant: &str, id: &str) -> TxResult<Option<Incident>> {
    tx.incident(tenant, id)
}

/// Writes the incident; a resolved one frees its source for a new incident.
pub fn put(tx: &Tx, tenant: &str, incident: &Incident) -> TxResult<()> {
    tx.put_incident(tenant, &incident.id, incident)?;
    if let Some(source) = &incident.source {
        if incident.is_open() {
            tx.set_open_incident(tenant, source, &incident.id)?;
        } else if tx.open_incident(tenant, source)?.is_some_and(|id| id == incident.id) {
            tx.clear_open_incident(tenant, source)?;
        }
    }
    Ok(())
}

/// Writes the incident and tells its latest update: the update's notification is routed and
/// saved in the same transaction.
pub fn record(tx: &Tx, tenant: &str, incident: &mut Incident, routing: &TenantRouting, now: Timestamp) -> TxResult<()> {
    let mut n = incident.notify(tenant, now);
    super::save(tx, tenant, &mut n, routing, now)?;
    put(tx, tenant, incident)
}

/// The incident open for a source, if any.
pub fn open_for(tx: &Tx, tenant: &str, source: &str) -> TxResult<Option<Incident>> {
    match tx.open_incident(tenant, source)? {
        Some(id) => get(tx, tenant, &id),
        None => Ok(None),
    }
}

/// Whether a source has an open incident (outside a transaction).
pub fn is_open_for(store: &store::Store, tenant: &str, source: &str) -> store::StoreResult<bool> {
    store.has_open_incident(tenant, source)
}

/// A page of incidents, newest first.
pub fn list(store: &store::Store, tenant: &str, query: &Query) -> store::StoreResult<Vec<Incident>> {
    let limit = query.limit.unwrap_or(100).min(MAX_PAGE);
    let mut page = Vec::new();
    for incident in store.incidents.newest_first::<Incident>(tenant) {
        let incident = incident?;
        if query.since.is_some_and(|since| incident.created_at < since) {
            break;
        }
        let wanted = query.status.is_none_or(|s| s == incident.status)
            && query.category.as_ref().is_none_or(|c| *c == incident.category)
            && query.kind.is_none_or(|k| k == incident.kind)
            && query.until.is_none_or(|until| incident.created_at < until);
        if wanted {
            page.push(incident);
            if page.len() == limit {
                break;
            }
        }
    }
    Ok(page)
}

/// The tenant's public incidents opened at or after `since`, newest first (a status page's).
pub fn public_since(store: &store::Store, tenant: &str, since: Timestamp) -> store::StoreResult<Vec<Incident>> {
    let mut found = Vec::new();
    for incident in store.incidents.newest_first::<Incident>(tenant) {
        let incident = incident?;
        if incident.created_at < since {
            break;
        }
        if incident.public {
            found.push(incident);
        }
    }
    Ok(found)
}

pub fn find(store: &store::Store, tenant: &str, id: &str) -> store::StoreResult<Option<Incident>> {
    store.incidents.get(tenant, id)
}

/// The configuration incident a system event raises (a channel Klaxon disabled, a plugin
/// failing its calls), unless one about the same channel or plugin is open; answers its
/// notification.
pub fn raised_by(tx: &Tx, tenant: &str, event: &Event, now: Timestamp) -> TxResult<Option<Notification>> {
    let text = |name: &str| event.properties.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    match event.event_type.as_str() {
        system::CHANNEL_DISABLED => raise_configuration(
            tx,
            tenant,
            source("channel", &text("channel_id")),
            format!("Channel {} was disabled", text("name")),
            text("reason"),
            now,
        ),
        system::PLUGIN_FAILING => raise_configuration(
            tx,
            tenant,
            source("plugin", &text("plugin")),
            format!("Plugin {} is failing its calls", text("plugin")),
            format!("Rule {}: {}", text("rule_id"), text("error")),
            now,
        ),
        _ => Ok(None),
    }
}

/// Opens a configuration incident for `source` unless one is open; answers its notification.
fn raise_configuration(
    tx: &Tx,
    tenant: &str,
    source: String,
    title: String,
    message: String,
    now: Timestamp,
) -> TxResult<Option<Notification>> {
    if open_for(tx, tenant, &source)?.is_some() {
        return Ok(None);
    }
    let spec = IncidentSpec {
        kind: IncidentKind::Incident,
        title,
        category: CONFIGURATION.into(),
        severity: Some(Severity::Warning),
        components: Vec::new(),
        message: Some(message),
        status: None,
        starts_at: None,
        ends_at: None,
        public: None,
    };
    let mut incident = Incident::open(new_id(now), &spec, "klaxon", now);
    incident.source = Some(source);
    let n = incident.notify(tenant, now);
    put(tx, tenant, &incident)?;
    Ok(Some(n))
}
