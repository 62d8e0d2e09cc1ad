//! A tenant's public status page: its settings (a slug unique across tenants, a title, the
//! components it shows), and where the page stands at a moment, worked out from the tenant's
//! public incidents and maintenances. Only what a visitor may see leaves here: titles, statuses,
//! messages and times, never the ids of rules, keys or customers.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::incidents::Incident;
use crate::context::{IncidentKind, IncidentStatus, Severity};
use crate::error::{Invalid, invalid};

const MAX_TITLE_BYTES: usize = 200;
const MAX_COMPONENTS: usize = 50;
const MAX_NAME_BYTES: usize = 100;
const MAX_HISTORY_DAYS: u32 = 365;
/// The most incident updates the Atom feed carries.
pub const FEED_ENTRIES: usize = 50;

/// What a tenant writes to `PUT /v1/status-page`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPageSpec {
    pub enabled: bool,
    /// The page's address, `/status/{slug}`: unique across tenants.
    pub slug: String,
    pub title: String,
    #[serde(default)]
    pub components: Vec<Component>,
    /// How many days of history the page shows.
    #[serde(default = "default_history_days")]
    pub history_days: u32,
}

fn default_history_days() -> u32 {
    90
}

/// A component of the page: incidents name it in their `components`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    /// Components of a group are shown together under its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// The stored page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusPage {
    #[serde(flatten)]
    pub spec: StatusPageSpec,
    pub updated_at: Timestamp,
}

/// A slug: 3 to 64 of a-z, 0-9 and `-`, starting and ending with a letter or digit.
fn check_slug(slug: &str) -> Result<(), Invalid> {
    let bytes = slug.as_bytes();
    let ok = (3..=64).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-';
    if ok { Ok(()) } else { Err(invalid("slug", "3 to 64 of a-z, 0-9 and -, not starting or ending with -")) }
}

fn check_text(field: String, text: &str, max: usize) -> Result<(), Invalid> {
    if text.trim().is_empty() || text.len() > max {
        return Err(invalid(field, format!("must be 1 to {max} bytes")));
    }
    Ok(())
}

impl StatusPageSpec {
    /// Every check but the slug's uniqueness (the store's).
    pub fn check(&self) -> Result<(), Invalid> {
        check_slug(&self.slug)?;
        check_text("title".into(), &self.title, MAX_TITLE_BYTES)?;
        if self.components.len() > MAX_COMPONENTS {
            return Err(invalid("components", format!("at most {MAX_COMPONENTS}")));
        }
        for (i, c) in self.components.iter().enumerate() {
            check_text(format!("components[{i}].name"), &c.name, MAX_NAME_BYTES)?;
            if let Some(group) = &c.group {
                check_text(format!("components[{i}].group"), group, MAX_NAME_BYTES)?;
            }
            if self.components[..i].iter().any(|other| other.name == c.name) {
                return Err(invalid(format!("components[{i}].name"), format!("`{}` is named twice", c.name)));
            }
        }
        if !(1..=MAX_HISTORY_DAYS).contains(&self.history_days) {
            return Err(invalid("history_days", format!("must be 1 to {MAX_HISTORY_DAYS}")));
        }
        Ok(())
    }
}

/// A component's (or the whole page's) condition, least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Operational,
    UnderMaintenance,
    Degraded,
    PartialOutage,
    MajorOutage,
}

impl Condition {
    pub fn label(self) -> &'static str {
        match self {
            Condition::Operational => "Operational",
            Condition::UnderMaintenance => "Under maintenance",
            Condition::Degraded => "Degraded performance",
            Condition::PartialOutage => "Partial outage",
            Condition::MajorOutage => "Major outage",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Condition::Operational => "operational",
            Condition::UnderMaintenance => "under_maintenance",
            Condition::Degraded => "degraded",
            Condition::PartialOutage => "partial_outage",
            Condition::MajorOutage => "major_outage",
        }
    }
}

/// What an incident does to the components it names while it is open: a maintenance puts them
/// under maintenance; an incident's severity says how badly they are out.
pub fn impact(kind: IncidentKind, severity: Severity) -> Condition {
    match (kind, severity) {
        (IncidentKind::Maintenance, _) => Condition::UnderMaintenance,
        (IncidentKind::Incident, Severity::Info) => Condition::Degraded,
        (IncidentKind::Incident, Severity::Warning) => Condition::PartialOutage,
        (IncidentKind::Incident, Severity::Critical) => Condition::MajorOutage,
    }
}

/// The page at a moment: what `/status/{slug}` shows and `.json` answers.
#[derive(Debug, Serialize)]
pub struct Status {
    pub title: String,
    /// The worst condition of any component or open incident.
    pub status: Condition,
    pub description: &'static str,
    pub components: Vec<ComponentStatus>,
    /// Open incidents, newest first.
    pub incidents: Vec<PublicIncident>,
    /// Maintenances scheduled or in progress, soonest first.
    pub maintenance: Vec<PublicIncident>,
    /// Incidents and maintenances resolved within the history, newest first.
    pub past_incidents: Vec<PublicIncident>,
    pub history_days: u32,
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize)]
pub struct ComponentStatus {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub status: Condition,
    /// One entry per day of the history, oldest first (UTC days): the worst condition of that
    /// day.
    pub days: Vec<Day>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Day {
    pub date: Date,
    pub status: Condition,
}

/// An incident as visitors see it.
#[derive(Debug, Serialize)]
pub struct PublicIncident {
    pub id: String,
    pub kind: IncidentKind,
    pub title: String,
    pub impact: Condition,
    pub status: IncidentStatus,
    pub components: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// Newest first.
    pub updates: Vec<PublicUpdate>,
}

#[derive(Debug, Serialize)]
pub struct PublicUpdate {
    pub at: Timestamp,
    pub status: IncidentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl PublicIncident {
    fn of(incident: &Incident) -> Self {
        PublicIncident {
            id: incident.id.clone(),
            kind: incident.kind,
            title: incident.title.clone(),
            impact: impact(incident.kind, incident.severity),
            status: incident.status,
            components: incident.components.clone(),
            starts_at: incident.starts_at,
            ends_at: incident.ends_at,
            created_at: incident.created_at,
            updated_at: incident.updated_at,
            resolved_at: incident.resolved_at,
            updates: incident
                .timeline
                .iter()
                .rev()
                .map(|u| PublicUpdate { at: u.at, status: u.status, message: u.message.clone() })
                .collect(),
        }
    }
}

/// When an incident affected its components: an incident from its opening, a maintenance from
/// its start (or from being marked in progress, if earlier), until resolved (or now).
fn affected(incident: &Incident, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
    let end = incident.resolved_at.unwrap_or(now);
    let start = match incident.kind {
        IncidentKind::Incident => incident.created_at,
        IncidentKind::Maintenance => {
            let marked = incident.timeline.iter().find(|u| u.status == IncidentStatus::InProgress).map(|u| u.at);
            [incident.starts_at, marked].into_iter().flatten().min()?
        }
    };
    (start <= end && start <= now).then_some((start, end))
}

/// The first moment the page's history covers: the start (UTC) of its oldest day.
pub fn history_start(page: &StatusPageSpec, now: Timestamp) -> Timestamp {
    let today = now.to_zoned(TimeZone::UTC).date();
    let first = today.saturating_sub((i64::from(page.history_days) - 1).days());
    first.to_zoned(TimeZone::UTC).map(|z| z.timestamp()).unwrap_or(Timestamp::MIN)
}

/// Where the page stands at `now`, from the tenant's public incidents (newest first) opened since
/// `history_start`, and any still open.
pub fn status(page: &StatusPageSpec, incidents: &[Incident], now: Timestamp) -> Status {
    let utc = TimeZone::UTC;
    let first_day = history_start(page, now).to_zoned(utc.clone()).date();
    let days = page.history_days as usize;
    let mut rows: BTreeMap<&str, Vec<Condition>> =
        page.components.iter().map(|c| (c.name.as_str(), vec![Condition::Operational; days])).collect();
    let mut current: BTreeMap<&str, Condition> =
        page.components.iter().map(|c| (c.name.as_str(), Condition::Operational)).collect();
    let mut overall = Condition::Operational;
    let (mut open, mut maintenance, mut past) = (Vec::new(), Vec::new(), Vec::new());
    for incident in incidents {
        let condition = impact(incident.kind, incident.severity);
        let window = affected(incident, now);
        // `affected` has already left out what has not started.
        let now_affecting = incident.is_open() && window.is_some();
        if now_affecting {
            overall = overall.max(condition);
        }
        for name in &incident.components {
            if now_affecting && let Some(c) = current.get_mut(name.as_str()) {
                *c = (*c).max(condition);
            }
            let (Some(row), Some((start, end))) = (rows.get_mut(name.as_str()), window) else { continue };
            let day_of = |t: Timestamp| i64::from((t.to_zoned(utc.clone()).date() - first_day).get_days());
            let (from, to) = (day_of(start).max(0) as usize, day_of(end));
            if to < 0 {
                continue;
            }
            for day in row.iter_mut().take(to as usize + 1).skip(from) {
                *day = (*day).max(condition);
            }
        }
        let shown = PublicIncident::of(incident);
        match (incident.is_open(), incident.kind) {
            (true, IncidentKind::Incident) => open.push(shown),
            (true, IncidentKind::Maintenance) => maintenance.push(shown),
            (false, _) => past.push(shown),
        }
    }
    maintenance.sort_by_key(|m| m.starts_at);
    let components: Vec<ComponentStatus> = page
        .components
        .iter()
        .map(|c| ComponentStatus {
            name: c.name.clone(),
            group: c.group.clone(),
            status: current[c.name.as_str()],
            days: rows[c.name.as_str()]
                .iter()
                .enumerate()
                .map(|(i, status)| Day { date: first_day.saturating_add((i as i64).days()), status: *status })
                .collect(),
        })
        .collect();
    let description = match overall {
        Condition::Operational => "All systems operational",
        Condition::UnderMaintenance => "Maintenance in progress",
        Condition::Degraded => "Degraded performance",
        Condition::PartialOutage => "Partial outage",
        Condition::MajorOutage => "Major outage",
    };
    Status {
        title: page.title.clone(),
        status: overall,
        description,
        components,
        incidents: open,
        maintenance,
        past_incidents: past,
        history_days: page.history_days,
        updated_at: now,
    }
}
