//! Noise control a channel or a subscription can ask for: active times (named time intervals
//! outside which everything is held until the next one begins, or dropped), quiet hours
//! (notifications below `critical` held until they end), a digest (everything collected and sent
//! as one summary at an interval or a daily time) and grouping (notifications with the same
//! values of `group_by` arriving within `group_wait` sent as one). Each decides, for a
//! notification at a time, whether it goes, is held and until when, or is dropped.

use std::collections::BTreeSet;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Serialize};

pub use crate::context::HoldKind;
use crate::context::Severity;
use crate::duration::Duration;
use crate::error::{Invalid, invalid};
use crate::records::notification::Notification;
use crate::time_intervals::{Schedules, any_holds};

/// What happens outside a channel's or subscription's `active_during`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outside {
    /// Held, as in quiet hours, until the next interval begins.
    #[default]
    Hold,
    /// Not sent there at all.
    Drop,
}

impl Outside {
    pub fn is_hold(&self) -> bool {
        *self == Outside::Hold
    }
}

/// What noise control does with one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// It goes, perhaps held for a batch.
    Send(Option<Hold>),
    /// It does not go (outside the active times, with `outside: "drop"`).
    Drop,
}

/// When a channel's or a subscription's notifications below `critical` wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// An IANA time zone, such as `Europe/Paris`.
    pub timezone: String,
    /// The days quiet hours start on; every day when absent.
    #[serde(default = "every_day", skip_serializing_if = "is_every_day")]
    pub days: BTreeSet<Day>,
    /// Local times, `HH:MM`; `from` after `to` runs past midnight, equal means all day.
    pub from: LocalTime,
    pub to: LocalTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn of(date: Date) -> Day {
        match date.weekday() {
            Weekday::Monday => Day::Mon,
            Weekday::Tuesday => Day::Tue,
            Weekday::Wednesday => Day::Wed,
            Weekday::Thursday => Day::Thu,
            Weekday::Friday => Day::Fri,
            Weekday::Saturday => Day::Sat,
            Weekday::Sunday => Day::Sun,
        }
    }
}

fn every_day() -> BTreeSet<Day> {
    [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri, Day::Sat, Day::Sun].into()
}

fn is_every_day(days: &BTreeSet<Day>) -> bool {
    days.len() == 7
}

/// A wall-clock time of day, written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime(pub Time);

impl Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:02}:{:02}", self.0.hour(), self.0.minute()))
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parsed = match text.as_bytes() {
            [h1, h2, b':', m1, m2] if [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) => {
                let number = |a: &u8, b: &u8| ((a - b'0') * 10 + (b - b'0')) as i8;
                Time::new(number(h1, h2), number(m1, m2), 0, 0).ok()
            }
            _ => None,
        };
        parsed.map(LocalTime).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a time written HH:MM")))
    }
}

/// When a digest goes out: every interval (counted from the Unix epoch, so `1h` is on the
/// hour), or daily at a local time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_at: Option<LocalTime>,
    /// For `daily_at`; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// The noise control of one channel or subscription (its spec's `quiet_hours`, `digest`,
/// `group_by` and `group_wait`; read from a stored spec, other fields ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Noise {
    pub quiet_hours: Option<QuietHours>,
    pub digest: Option<DigestSchedule>,
    pub group_by: Vec<String>,
    pub group_wait: Option<Duration>,
    pub active_during: Vec<String>,
    pub outside: Outside,
}

/// A notification held for one channel: the batch it joins and when that batch goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub kind: HoldKind,
    /// Names the batch among the channel's: notifications held with the same key go out as one.
    pub key: String,
    /// When a new batch goes out (a batch already open keeps its own time).
    pub until: Timestamp,
}

/// How long a group waits for more when `group_wait` is not given.
const DEFAULT_GROUP_WAIT: SignedDuration = SignedDuration::from_secs(30);
/// The shortest digest interval.
const MIN_DIGEST: SignedDuration = SignedDuration::from_secs(60);
/// The longest `group_wait`.
const MAX_GROUP_WAIT: SignedDuration = SignedDuration::from_hours(24);
/// What `group_by` may name, besides `customer.fields.*` and `labels.*`.
const GROUP_FIELDS: &[&str] = &["rule.id", "rule.name", "category", "severity", "customer.id", "scope_key", "kind"];

impl Noise {
    /// No noise control: every notification goes at once.
    pub fn is_empty(&self) -> bool {
        self.quiet_hours.is_none() && self.digest.is_none() && self.group_by.is_empty() && self.active_during.is_empty()
    }

    /// Refuses a bad setting, naming its field.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.outside == Outside::Drop && self.active_during.is_empty() {
            return Err(invalid("outside", "applies only with `active_during`"));
        }
        if let Some(quiet) = &self.quiet_hours {
            zone("quiet_hours.timezone", &quiet.timezone)?;
            if quiet.days.is_empty() {
                return Err(invalid("quiet_hours.days", "name at least one day (or leave `days` out for every day)"));
            }
        }
        if let Some(digest) = &self.digest {
            match (digest.every, digest.daily_at) {
                (Some(every), None) => {
                    if every.0 < MIN_DIGEST {
                        return Err(invalid("digest.every", "must be at least 1m"));
                    }
                    if digest.timezone.is_some() {
                        return Err(invalid("digest.timezone", "applies only to `daily_at`"));
                    }
                }
                (None, Some(_)) => {
                    if let Some(tz) = &digest.timezone {
                        zone("digest.timezone", tz)?;
                    }
                }
                _ => {
                    return Err(invalid(
                        "digest",
                        "give exactly one of `every` (e.g. \"1h\") and `daily_at` (\"09:00\")",
                    ));
                }
            }
        }
        for (i, field) in self.group_by.iter().enumerate() {
            let free =
                ["customer.fields.", "labels."].iter().any(|p| field.strip_prefix(p).is_some_and(|n| !n.is_empty()));
            if !free && !GROUP_FIELDS.contains(&field.as_str()) {
                return Err(invalid(
                    format!("group_by[{i}]"),
                    format!(
                        "`{field}` is not one of {}, customer.fields.<name>, labels.<name>",
                        GROUP_FIELDS.join(", ")
                    ),
                ));
            }
        }
        if let Some(wait) = self.group_wait {
            if self.group_by.is_empty() {
                return Err(invalid("group_wait", "applies only with `group_by`"));
            }
            if wait.0 <= SignedDuration::ZERO || wait.0 > MAX_GROUP_WAIT {
                return Err(invalid("group_wait", "must be more than 0s and at most 24h"));
            }
        }
        Ok(())
    }

    /// Whether `n`, made at `now`, goes: outside the active times (whatever its severity) it is
    /// held until the next one begins, or dropped; else as `hold` says.
    pub fn gate(&self, n: &Notification, now: Timestamp, schedules: &Schedules) -> Gate {
        if self.active_during.is_empty() || any_holds(schedules, &self.active_during, now) {
            return Gate::Send(self.hold(n, now));
        }
        let next = self.active_during.iter().filter_map(|name| schedules.get(name)?.next_start(now)).min();
        match (self.outside, next) {
            (Outside::Hold, Some(until)) => {
                Gate::Send(Some(Hold { kind: HoldKind::Inactive, key: format!("inactive:{until}"), until }))
            }
            _ => Gate::Drop,
        }
    }

    /// Whether `n`, made at `now`, waits, and for what: quiet hours first (never for
    /// `critical`), then the digest, then grouping.
    fn hold(&self, n: &Notification, now: Timestamp) -> Option<Hold> {
        if let Some(quiet) = &self.quiet_hours
            && n.context.rule.severity < Severity::Critical
            && let Some(end) = quiet.end_if_inside(now)
        {
            return Some(Hold { kind: HoldKind::QuietHours, key: format!("quiet:{end}"), until: end });
        }
        if let Some(digest) = &self.digest {
            let next = digest.next_after(now);
            return Some(Hold { kind: HoldKind::Digest, key: format!("digest:{next}"), until: next });
        }
        if self.group_by.is_empty() {
            return None;
        }
        let values: Vec<String> = self.group_by.iter().map(|field| group_value(n, field)).collect();
        let wait = self.group_wait.map_or(DEFAULT_GROUP_WAIT, |w| w.0);
        Some(Hold {
            kind: HoldKind::Group,
            key: format!("group:{}", serde_json::to_string(&values).expect("strings serialize")),
            until: now.saturating_add(wait).expect("bounded wait"),
        })
    }
}

fn zone(field: &str, name: &str) -> Result<TimeZone, Invalid> {
    TimeZone::get(name)
        .map_err(|_| invalid(field, format!("`{name}` is not a known time zone (e.g. Europe/Paris, UTC)")))
}

/// A checked zone: specs are checked when saved, so an unknown one (a zone database that lost
/// it) counts as UTC.
fn zone_or_utc(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

fn at(date: Date, time: LocalTime, tz: &TimeZone) -> Timestamp {
    date.to_datetime(time.0).to_zoned(tz.clone()).map_or(Timestamp::MAX, |z| z.timestamp())
}

impl QuietHours {
    /// When the quiet hours `now` falls in end; `None` outside them.
    pub fn end_if_inside(&self, now: Timestamp) -> Option<Timestamp> {
        let tz = zone_or_utc(&self.timezone);
        let today = now.to_zoned(tz.clone()).date();
        // A window starts on a listed day and may run into the next one.
        [today.yesterday().ok()?, today].into_iter().find_map(|day| {
            if !self.days.contains(&Day::of(day)) {
                return None;
            }
            let start = at(day, self.from, &tz);
            let end_day = if self.to.0 > self.from.0 { day } else { day.tomorrow().ok()? };
            let end = at(end_day, self.to, &tz);
            (start <= now && now < end).then_some(end)
        })
    }
}

impl DigestSchedule {
    /// When the digest collecting at `now` goes out.
    pub fn next_after(&self, now: Timestamp) -> Timestamp {
        if let Some(every) = self.every {
            let step = every.0.as_micros().max(1);
            let now_us = i128::from(now.as_microsecond());
            let next = (now_us.div_euclid(step) + 1) * step;
            return i64::try_from(next)
                .ok()
                .and_then(|us| Timestamp::from_microsecond(us).ok())
                .unwrap_or(Timestamp::MAX);
        }
        let tz = self.timezone.as_deref().map_or(TimeZone::UTC, zone_or_utc);
        let time = self.daily_at.unwrap_or(LocalTime(Time::midnight()));
        let today = Zoned::new(now, tz.clone()).date();
        let candidate = at(today, time, &tz);
        if candidate > now { candidate } else { today.tomorrow().map_or(Timestamp::MAX, |d| at(d, time, &tz)) }
    }
}

/// What `n` holds for a `group_by` field (empty when it holds nothing).
fn group_value(n: &Notification, field: &str) -> String {
    let rule = &n.context.rule;
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    match field {
        "rule.id" => n.rule_id.clone().unwrap_or_default(),
        "rule.name" => rule.name.clone(),
        "category" => rule.category.clone().unwrap_or_default(),
        "severity" => format!("{:?}", rule.severity),
        "customer.id" => n.customer_id.clone().unwrap_or_default(),
        "scope_key" => n.scope_key.clone(),
        "kind" => format!("{:?}", n.kind),
        _ => {
            if let Some(name) = field.strip_prefix("customer.fields.") {
                n.context.customer.as_ref().and_then(|c| c.fields.get(name)).map(text).unwrap_or_default()
            } else {
                field.strip_prefix("labels.").and_then(|name| n.labels.get(name)).cloned().unwrap_or_default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::render::sample;

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn quiet(json: serde_json::Value) -> QuietHours {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn quiet_hours_run_past_midnight_on_their_days_in_their_zone() {
        // 22:00 to 07:00 in Paris (UTC+1 in January), starting on weekdays.
        let q = quiet(serde_json::json!({
            "timezone": "Europe/Paris", "days": ["mon", "tue", "wed", "thu", "fri"], "from": "22:00", "to": "07:00",
        }));
        // Friday 2030-01-04 23:30 Paris: inside, ends Saturday 07:00 Paris.
        assert_eq!(q.end_if_inside(t("2030-01-04T22:30:00Z")), Some(t("2030-01-05T06:00:00Z")));
        // Saturday 23:30: Saturday is not listed; Sunday 03:00 neither (Saturday's window).
        assert_eq!(q.end_if_inside(t("2030-01-05T22:30:00Z")), None);
        assert_eq!(q.end_if_inside(t("2030-01-06T02:00:00Z")), None);
        // Tuesday 03:00 Paris: Monday's window.
        assert_eq!(q.end_if_inside(t("2030-01-08T02:00:00Z")), Some(t("2030-01-08T06:00:00Z")));
        // Tuesday 07:00 Paris exactly: over.
        assert_eq!(q.end_if_inside(t("2030-01-08T06:00:00Z")), None);
        let daytime = quiet(serde_json::json!({ "timezone": "UTC", "from": "12:00", "to": "13:00" }));
        assert_eq!(daytime.end_if_inside(t("2030-01-08T12:59:59Z")), Some(t("2030-01-08T13:00:00Z")));
        assert_eq!(daytime.end_if_inside(t("2030-01-08T11:59:59Z")), None);
    }

    #[test]
    fn digests_go_out_on_the_interval_or_the_daily_time() {
        let hourly: DigestSchedule = serde_json::from_value(serde_json::json!({ "every": "1h" })).unwrap();
        assert_eq!(hourly.next_after(t("2030-01-01T10:20:00Z")), t("2030-01-01T11:00:00Z"));
        assert_eq!(hourly.next_after(t("2030-01-01T11:00:00Z")), t("2030-01-01T12:00:00Z"));
        let daily: DigestSchedule =
            serde_json::from_value(serde_json::json!({ "daily_at": "09:00", "timezone": "America/New_York" })).unwrap();
        assert_eq!(daily.next_after(t("2030-01-01T13:00:00Z")), t("2030-01-01T14:00:00Z"));
        assert_eq!(daily.next_after(t("2030-01-01T14:00:00Z")), t("2030-01-02T14:00:00Z"));
    }

    #[test]
    fn critical_passes_quiet_hours_and_groups_share_a_key() {
        let q = quiet(serde_json::json!({ "timezone": "UTC", "from": "00:00", "to": "00:00" }));
        let noise = Noise { quiet_hours: Some(q), ..Noise::default() };
        let mut n = sample("t", t("2030-01-01T10:00:00Z"));
        let hold = noise.hold(&n, n.created_at).unwrap();
        assert_eq!((hold.kind, hold.until), (HoldKind::QuietHours, t("2030-01-02T00:00:00Z")));
        n.context.rule.severity = Severity::Critical;
        assert_eq!(noise.hold(&n, n.created_at), None);

        let grouping = Noise { group_by: vec!["rule.id".into(), "customer.fields.tier".into()], ..Noise::default() };
        let first = grouping.hold(&n, n.created_at).unwrap();
        assert_eq!(first.until, t("2030-01-01T10:00:30Z"));
        n.customer_id = Some("other".into());
        assert_eq!(grouping.hold(&n, n.created_at).unwrap().key, first.key, "customer.id is not grouped on");
        n.context.customer.as_mut().unwrap().fields.insert("tier".into(), "free".into());
        assert_ne!(grouping.hold(&n, n.created_at).unwrap().key, first.key);
    }

    #[test]
    fn bad_settings_name_their_field() {
        let q = quiet(serde_json::json!({ "timezone": "Mars/Olympus", "from": "22:00", "to": "07:00" }));
        let err = Noise { quiet_hours: Some(q), ..Noise::default() }.check().unwrap_err();
        assert_eq!(err.field, "quiet_hours.timezone");
        assert!(
            serde_json::from_value::<QuietHours>(
                serde_json::json!({ "timezone": "UTC", "from": "25:00", "to": "07:00" })
            )
            .is_err()
        );
        let by = vec!["rule.colour".to_string()];
        assert_eq!(Noise { group_by: by, ..Noise::default() }.check().unwrap_err().field, "group_by[0]");
        let both: DigestSchedule =
            serde_json::from_value(serde_json::json!({ "every": "1h", "daily_at": "09:00" })).unwrap();
        assert_eq!(Noise { digest: Some(both), ..Noise::default() }.check().unwrap_err().field, "digest");
    }
}
