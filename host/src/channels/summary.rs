//! What happened, in words: the headline and facts every built-in payload is made of.

use serde::Serialize;

use crate::context::{AlertState, HoldKind, IncidentStatus, Member};
use crate::records::notification::{Kind as NotificationKind, Notification};

/// One line of a notification's summary.
#[derive(Debug, Clone, Serialize)]
pub struct Fact {
    pub label: &'static str,
    pub value: String,
}

/// What happened, in words: the heart of every built-in payload.
pub struct Summary {
    pub headline: String,
    pub facts: Vec<Fact>,
}

impl Summary {
    pub fn of(n: &Notification) -> Summary {
        let c = &n.context;
        let rule = &c.rule.name;
        let what = match n.kind {
            NotificationKind::Alarm => format!("{rule} is in alarm"),
            NotificationKind::Reminder => format!("{rule} is still in alarm"),
            NotificationKind::Resolved => format!("{rule} is resolved"),
            NotificationKind::Step => format!("{rule} reached {}% of its target", n.step.unwrap_or_default()),
            NotificationKind::Match => format!("{rule} matched an event"),
            NotificationKind::Offset => format!("{rule}: the time has come"),
            NotificationKind::Cohort => {
                let cohort = c.cohort.as_ref().map_or("the cohort", |cohort| cohort.name.as_str());
                let part = c.part.map(|p| format!(" (part {} of {})", p.number, p.of)).unwrap_or_default();
                format!("{rule}: {} entered and {} left {cohort}{part}", c.entered_count, c.exited_count)
            }
            NotificationKind::Incident => {
                let status = c.incident.as_ref().map_or(String::new(), |i| words(i.status));
                format!("{rule}: {status}")
            }
            NotificationKind::Maintenance => match c.incident.as_ref().map(|i| i.status) {
                Some(IncidentStatus::InProgress) => format!("Maintenance started: {rule}"),
                Some(IncidentStatus::Resolved) => format!("Maintenance ended: {rule}"),
                _ => format!("Maintenance scheduled: {rule}"),
            },
            NotificationKind::Digest => {
                let count = c.digest.as_ref().map_or(0, |d| d.count);
                match c.digest.as_ref().map(|d| d.reason) {
                    Some(HoldKind::QuietHours) => format!("{count} notifications held during quiet hours"),
                    Some(HoldKind::Inactive) => format!("{count} notifications held outside active times"),
                    _ => format!("Digest: {count} notifications"),
                }
            }
            NotificationKind::Group => {
                format!("{rule}: {} notifications grouped", c.digest.as_ref().map_or(0, |d| d.count))
            }
            NotificationKind::Flapping => format!("{rule} is flapping"),
            NotificationKind::Stable => format!("{rule} is stable again ({})", words(c.state.current)),
        };
        let headline = match &c.customer {
            Some(customer) => format!("{what} for {}", customer.name.as_deref().unwrap_or(&customer.id)),
            None => what,
        };
        let mut facts = vec![Fact { label: "Severity", value: format!("{:?}", c.rule.severity).to_lowercase() }];
        if let Some(customer) = &c.customer {
            let value = match &customer.name {
                Some(name) => format!("{name} ({})", customer.id),
                None => customer.id.clone(),
            };
            facts.push(Fact { label: "Customer", value });
        }
        if let Some(value) = c.value {
            facts.push(Fact { label: "Value", value: value.to_string() });
        }
        if let Some(threshold) = c.threshold {
            facts.push(Fact { label: "Threshold", value: threshold.to_string() });
        }
        if let Some(window) = &c.window {
            facts.push(Fact { label: "Window", value: format!("{} to {}", window.start, window.end) });
        }
        if let Some(forecast) = &c.forecast {
            let projected = (forecast.projected * 100.0).round() / 100.0;
            facts.push(Fact { label: "Projected", value: format!("{projected} by {}", forecast.by) });
            if let Some(at) = forecast.crossing_at {
                facts.push(Fact { label: "Reaches the threshold", value: at.to_string() });
            }
        }
        if let Some(event) = &c.event {
            facts.push(Fact { label: "Event", value: format!("{} ({})", event.event_type, event.id) });
        }
        if let Some(message) = &n.message {
            facts.push(Fact { label: "Message", value: message.clone() });
        }
        if let Some(incident) = &c.incident {
            facts.push(Fact { label: "Incident", value: format!("{} ({})", incident.id, words(incident.status)) });
            if !incident.components.is_empty() {
                facts.push(Fact { label: "Components", value: incident.components.join(", ") });
            }
            if let (Some(start), Some(end)) = (incident.starts_at, incident.ends_at) {
                facts.push(Fact { label: "Window", value: format!("{start} to {end}") });
            }
        }
        if let Some(digest) = &c.digest {
            facts.push(Fact { label: "Notifications", value: digest.count.to_string() });
        }
        if let Some(flapping) = &c.flapping {
            let value = format!("{} changes within {}", flapping.changes, flapping.within);
            facts.push(Fact { label: "State changes", value });
        }
        if n.kind == NotificationKind::Cohort {
            for (label, members) in [("Entered", &c.entered), ("Left", &c.exited)] {
                if !members.is_empty() {
                    facts.push(Fact { label, value: names(members) });
                }
            }
        }
        if c.state.previous != c.state.current {
            let state = |s: AlertState| format!("{s:?}");
            facts.push(Fact {
                label: "State",
                value: format!("{} -> {}", state(c.state.previous), state(c.state.current)),
            });
        }
        Summary { headline, facts }
    }
}

/// A state or status as words: `in_progress` is "in progress".
fn words(value: impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(|s| s.replace('_', " "))).unwrap_or_default()
}

/// Customers listed by name (or id), at most `LISTED` of them; the rest counted.
fn names(members: &[Member]) -> String {
    const LISTED: usize = 50;
    let mut text: Vec<String> =
        members.iter().take(LISTED).map(|m| m.name.clone().unwrap_or_else(|| m.id.clone())).collect();
    if members.len() > LISTED {
        text.push(format!("and {} more", members.len() - LISTED));
    }
    text.join(", ")
}
