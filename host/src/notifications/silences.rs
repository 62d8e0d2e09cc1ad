//! Silences (Alertmanager's): matchers over a notification, a start and an end, and perhaps time
//! intervals it mutes within (every time they come round: a recurring silence). A notification
//! a silence matches while it is active (and inside one of its intervals) is kept, with status
//! `silenced`, and not sent. An expired silence stops matching by itself; deleting one expires
//! it, and it stays listed.

use std::borrow::Cow;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Notification;
use crate::error::{Invalid, invalid};
use crate::records::Owned;
use crate::rules::condition::{Filter, Op, check_comparison};
use crate::time_intervals::{Schedules, any_holds};

const MAX_MATCHERS: usize = 20;
const MAX_COMMENT_BYTES: usize = 1000;
const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// A silence as a client writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceSpec {
    /// All must hold: filters (the rules' language) on `rule.id`, `rule.name`, `rule.category`,
    /// `rule.severity`, `customer.id`, `customer.<field>` and `labels.<name>`.
    pub matchers: Vec<Filter>,
    /// Now when absent.
    #[serde(default)]
    pub starts_at: Option<Timestamp>,
    /// Required unless `during` names intervals: such a silence recurs until deleted.
    #[serde(default)]
    pub ends_at: Option<Timestamp>,
    /// Time intervals (`/v1/time-intervals`, by name) it mutes within, between its start and end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub during: Vec<String>,
    /// Why: shown beside every notification it silences.
    pub comment: String,
}

pub type Silence = Owned<SilenceSpec>;

/// Where a silence stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Active,
    Expired,
}

/// A silence as the API shows it.
#[derive(Debug, Serialize)]
pub struct SilenceView<'a> {
    #[serde(flatten)]
    pub silence: crate::records::OwnedView<'a, SilenceSpec>,
    pub state: State,
}

impl SilenceSpec {
    /// Every check; `now` fills a missing start and refuses an end already past.
    pub fn check(&mut self, now: Timestamp) -> Result<(), Invalid> {
        if self.matchers.is_empty() || self.matchers.len() > MAX_MATCHERS {
            return Err(invalid("matchers", format!("give 1 to {MAX_MATCHERS} matchers")));
        }
        for (i, matcher) in self.matchers.iter().enumerate() {
            let at = format!("matchers[{i}]");
            check_field(&at, matcher)?;
            check_comparison(&at, matcher)?;
        }
        let starts_at = *self.starts_at.get_or_insert(now);
        match self.ends_at {
            Some(ends_at) => super::check_window(starts_at, ends_at, now)?,
            None if self.during.is_empty() => {
                return Err(invalid("ends_at", "is required, unless `during` names the time intervals it recurs in"));
            }
            None => {}
        }
        if self.during.len() > MAX_MATCHERS {
            return Err(invalid("during", format!("name at most {MAX_MATCHERS} time intervals")));
        }
        if self.comment.trim().is_empty() || self.comment.len() > MAX_COMMENT_BYTES {
            return Err(invalid("comment", format!("say why, in 1 to {MAX_COMMENT_BYTES} bytes")));
        }
        Ok(())
    }

    pub fn state(&self, now: Timestamp) -> State {
        match self.starts_at {
            _ if self.ends_at.is_some_and(|end| end <= now) => State::Expired,
            Some(start) if start > now => State::Pending,
            _ => State::Active,
        }
    }

    /// Whether it mutes at `now`: active, and inside one of its intervals if it names any.
    pub fn muting(&self, now: Timestamp, schedules: &Schedules) -> bool {
        self.state(now) == State::Active && (self.during.is_empty() || any_holds(schedules, &self.during, now))
    }

    /// Whether it silences `n` at `now`.
    pub fn silences(&self, n: &Notification, now: Timestamp, schedules: &Schedules) -> bool {
        self.muting(now, schedules) && self.matchers.iter().all(|m| m.holds_for(lookup(n, &m.field).as_deref()))
    }
}

impl Silence {
    pub fn view_at(&self, now: Timestamp) -> SilenceView<'_> {
        SilenceView { silence: Owned::view(self), state: self.spec.state(now) }
    }
}

fn check_field(at: &str, matcher: &Filter) -> Result<(), Invalid> {
    let known = match matcher.field.split_once('.') {
        Some(("rule", "id" | "name" | "category" | "severity")) => true,
        Some(("customer" | "labels", name)) => !name.is_empty(),
        _ => false,
    };
    if !known {
        return Err(invalid(
            format!("{at}.field"),
            "must read `rule.id`, `rule.name`, `rule.category`, `rule.severity`, `customer.id`, `customer.<field>` or `labels.<name>`",
        ));
    }
    if matcher.field == "rule.severity" {
        let names: Vec<&Value> = match (&matcher.op, &matcher.value) {
            (Op::Equal | Op::NotEqual, value) => vec![value],
            (Op::In, Value::Array(values)) => values.iter().collect(),
            _ => return Err(invalid(format!("{at}.op"), "severity matches with `=`, `!=` or `in`")),
        };
        if let Some(bad) = names.iter().find(|v| !v.as_str().is_some_and(|s| SEVERITIES.contains(&s))) {
            return Err(invalid(format!("{at}.value"), format!("{bad} is not a severity: info, warning or critical")));
        }
    }
    Ok(())
}

/// The value of a matcher's field in a notification.
fn lookup<'a>(n: &'a Notification, field: &str) -> Option<Cow<'a, Value>> {
    let rule = &n.context.rule;
    let text = |s: &str| Some(Cow::Owned(Value::String(s.to_string())));
    match field.split_once('.')? {
        ("rule", "id") => text(n.rule_id.as_deref().unwrap_or_default()),
        ("rule", "name") => text(&rule.name),
        ("rule", "category") => rule.category.as_deref().and_then(text),
        ("rule", "severity") => serde_json::to_value(rule.severity).ok().map(Cow::Owned),
        ("customer", "id") => n.customer_id.as_deref().and_then(text),
        ("customer", name) => n.context.customer.as_ref()?.fields.get(name).map(Cow::Borrowed),
        ("labels", name) => n.labels.get(name).map(|v| text(v))?,
        _ => None,
    }
}
