//! Time intervals, as Alertmanager's `time_intervals` (Grafana's mute timings): a named list of
//! ranges of the calendar in one time zone, for silences that recur ("every Sunday 02:00-04:00")
//! and for subscriptions and channels active only at some times.
//!
//! A range holds when every field it gives holds (a field left out holds always); the interval
//! holds when any of its ranges does. `times` are local `HH:MM-HH:MM`, the start inside and the
//! end outside (`24:00` ends at midnight); `weekdays`, `days_of_month` (negative counts from the
//! month's end: `-1` is its last day), `months` and `years` take single values or inclusive
//! `a:b` ranges. Across a change of the clocks, a local time that does not exist that day is
//! skipped, and a repeated local time is in a range the first time only.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::error::{Invalid, invalid};

const MAX_RANGES: usize = 50;
const MAX_ITEMS: usize = 50;
/// How far ahead the next start is looked for.
const LOOKAHEAD_DAYS: i32 = 4 * 366;

/// A time interval as a client writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalSpec {
    pub name: String,
    /// An IANA time zone; UTC when absent.
    #[serde(default = "utc")]
    pub timezone: String,
    pub ranges: Vec<Range>,
}

fn utc() -> String {
    "UTC".into()
}

/// One range: all its fields must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<Item>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days_of_month: Vec<Item>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<Item>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub years: Vec<Item>,
}

/// A value or an `a:b` range, written as a string or (for numbers) an integer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Item {
    Number(i64),
    Text(String),
}

impl Item {
    fn text(&self) -> String {
        match self {
            Item::Number(n) => n.to_string(),
            Item::Text(t) => t.trim().to_ascii_lowercase(),
        }
    }
}

/// A tenant's intervals, ready to answer, by name.
pub type Schedules = std::collections::HashMap<String, Schedule>;

/// Whether any of the intervals `names` holds at `t` (an unknown name holds never).
pub fn any_holds(schedules: &Schedules, names: &[String], t: Timestamp) -> bool {
    names.iter().any(|name| schedules.get(name).is_some_and(|s| s.contains(t)))
}

/// An interval ready to answer: its zone and its ranges, parsed.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: TimeZone,
    ranges: Vec<Parsed>,
}

#[derive(Debug, Clone, Default)]
struct Parsed {
    /// Minutes of the day, `[start, end)`.
    times: Vec<(i32, i32)>,
    weekdays: Vec<(i32, i32)>,
    days_of_month: Vec<(i32, i32)>,
    months: Vec<(i32, i32)>,
    years: Vec<(i32, i32)>,
}

const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

impl TimeIntervalSpec {
    /// Every check, naming the field at fault; the schedule it describes.
    pub fn check(&self) -> Result<Schedule, Invalid> {
        let fits = (1..=64).contains(&self.name.len())
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !fits {
            return Err(invalid("name", "must be 1 to 64 letters, digits, `-`, `_` or `.`"));
        }
        let tz = TimeZone::get(&self.timezone).map_err(|_| {
            invalid("timezone", format!("`{}` is not a known time zone (e.g. Europe/Berlin, UTC)", self.timezone))
        })?;
        if self.ranges.is_empty() || self.ranges.len() > MAX_RANGES {
            return Err(invalid("ranges", format!("give 1 to {MAX_RANGES} ranges")));
        }
        let ranges =
            self.ranges.iter().enumerate().map(|(i, r)| r.parse(&format!("ranges[{i}]"))).collect::<Result<_, _>>()?;
        Ok(Schedule { tz, ranges })
    }

    /// The schedule of a spec that was checked when saved (one that no longer parses holds never).
    pub fn schedule(&self) -> Schedule {
        self.check().unwrap_or_else(|_| Schedule { tz: TimeZone::UTC, ranges: Vec::new() })
    }
}

impl Range {
    fn parse(&self, at: &str) -> Result<Parsed, Invalid> {
        let list = |field: &str, items: &[Item], one: &dyn Fn(&str) -> Option<i32>, bounds: (i32, i32)| {
            if items.len() > MAX_ITEMS {
                return Err(invalid(format!("{at}.{field}"), format!("at most {MAX_ITEMS} entries")));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let text = item.text();
                    let bad = || invalid(format!("{at}.{field}[{i}]"), format!("`{text}` is not {}", describe(field)));
                    let (a, b) = match text.split_once(':') {
                        Some((a, b)) => (one(a).ok_or_else(bad)?, one(b).ok_or_else(bad)?),
                        None => {
                            let v = one(&text).ok_or_else(bad)?;
                            (v, v)
                        }
                    };
                    let inside = |v: i32| v >= bounds.0 && v <= bounds.1;
                    let same_sign = field != "days_of_month" || (a > 0) == (b > 0);
                    if !inside(a) || !inside(b) || !same_sign || (a > b) {
                        return Err(bad());
                    }
                    Ok((a, b))
                })
                .collect::<Result<Vec<_>, Invalid>>()
        };
        let name_or_number = |names: &'static [&'static str]| {
            move |text: &str| names.iter().position(|n| *n == text).map(|i| i as i32 + 1).or_else(|| text.parse().ok())
        };
        let number = |text: &str| text.parse::<i32>().ok();
        let weekday = |text: &str| WEEKDAYS.iter().position(|n| *n == text).map(|i| i as i32 + 1);
        let day = |text: &str| number(text).filter(|d| *d != 0);
        let mut times = Vec::new();
        if self.times.len() > MAX_ITEMS {
            return Err(invalid(format!("{at}.times"), format!("at most {MAX_ITEMS} entries")));
        }
        for (i, text) in self.times.iter().enumerate() {
            let bad = || {
                invalid(
                    format!("{at}.times[{i}]"),
                    format!(
                        "`{text}` is not a range of local times like 09:00-17:30 (the end after the start, at most 24:00)"
                    ),
                )
            };
            let (start, end) = text.split_once('-').ok_or_else(bad)?;
            let (start, end) = (minutes(start.trim()).ok_or_else(bad)?, minutes(end.trim()).ok_or_else(bad)?);
            if start >= end {
                return Err(bad());
            }
            times.push((start, end));
        }
        Ok(Parsed {
            times,
            weekdays: list("weekdays", &self.weekdays, &weekday, (1, 7))?,
            days_of_month: list("days_of_month", &self.days_of_month, &day, (-31, 31))?,
            months: list("months", &self.months, &name_or_number(&MONTHS), (1, 12))?,
            years: list("years", &self.years, &number, (1, 9999))?,
        })
    }
}

fn describe(field: &str) -> &'static str {
    match field {
        "weekdays" => "a weekday (monday ... sunday) or a range of them (monday:friday)",
        "days_of_month" => "a day of the month (1 to 31, or -1 for the last) or a range of them (1:7, -3:-1)",
        "months" => "a month (january ... december, or 1 to 12) or a range of them (1:3, may:august)",
        _ => "a year or a range of years (2030:2032)",
    }
}

/// `HH:MM` as minutes of the day, `24:00` included.
fn minutes(text: &str) -> Option<i32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

impl Parsed {
    fn holds_on(&self, date: Date) -> bool {
        let within =
            |ranges: &[(i32, i32)], v: i32| ranges.is_empty() || ranges.iter().any(|(a, b)| *a <= v && v <= *b);
        let weekday = date.weekday().to_monday_one_offset() as i32;
        let last = date.days_in_month() as i32;
        let day = date.day() as i32;
        let days = self.days_of_month.is_empty()
            || self.days_of_month.iter().any(|&(a, b)| {
                let resolve = |d: i32| if d < 0 { last + d + 1 } else { d };
                resolve(a) <= day && day <= resolve(b)
            });
        within(&self.weekdays, weekday)
            && days
            && within(&self.months, date.month() as i32)
            && within(&self.years, date.year() as i32)
    }

    fn holds_at(&self, minute: i32) -> bool {
        self.times.is_empty() || self.times.iter().any(|(a, b)| *a <= minute && minute < *b)
    }
}

impl Schedule {
    /// Whether the interval holds at `t`.
    pub fn contains(&self, t: Timestamp) -> bool {
        let local = t.to_zoned(self.tz.clone());
        let date = local.date();
        let minute = local.hour() as i32 * 60 + local.minute() as i32;
        self.ranges.iter().any(|range| {
            range.holds_on(date)
                && range.holds_at(minute)
                && (range.times.is_empty() || self.first_pass(local.datetime(), t))
        })
    }

    /// Whether `t` is the first time its local time occurs (not the second pass of an hour the
    /// clocks repeated).
    fn first_pass(&self, local: DateTime, t: Timestamp) -> bool {
        match self.tz.to_ambiguous_timestamp(local).offset() {
            AmbiguousOffset::Fold { before, .. } => self.tz.to_offset(t) == before,
            _ => true,
        }
    }

    /// The first moment at or after `t` when the interval holds; `None` when it never does
    /// within four years.
    pub fn next_start(&self, t: Timestamp) -> Option<Timestamp> {
        if self.contains(t) {
            return Some(t);
        }
        let first = t.to_zoned(self.tz.clone()).date();
        let transitions: Vec<Timestamp> =
            self.tz.following(t).take(16).map(|transition| transition.timestamp()).collect();
        for offset in 0..LOOKAHEAD_DAYS {
            let Ok(date) = first.checked_add(offset.days()) else { return None };
            let mut candidates: Vec<Timestamp> = Vec::new();
            for range in self.ranges.iter().filter(|r| r.holds_on(date)) {
                let starts: Vec<i32> =
                    if range.times.is_empty() { vec![0] } else { range.times.iter().map(|(a, _)| *a).collect() };
                for minute in starts {
                    let time = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).ok()?;
                    if let Ok(zoned) = date.to_datetime(time).to_zoned(self.tz.clone()) {
                        candidates.push(zoned.timestamp());
                    }
                }
            }
            candidates.extend(transitions.iter().filter(|at| at.to_zoned(self.tz.clone()).date() == date));
            candidates.sort();
            if let Some(found) = candidates.into_iter().find(|c| *c >= t && self.contains(*c)) {
                return Some(found);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(json: serde_json::Value) -> Schedule {
        serde_json::from_value::<TimeIntervalSpec>(json).unwrap().check().unwrap()
    }

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_sunday_window_holds_on_sundays_only_in_its_zone() {
        let window = schedule(serde_json::json!({ "name": "maintenance", "timezone": "Europe/Berlin",
            "ranges": [{ "weekdays": ["sunday"], "times": ["02:00-04:00"] }] }));
        // Sunday 2030-01-13 02:30 Berlin (UTC+1) is 01:30Z; Monday the same hour is not.
        assert!(window.contains(t("2030-01-13T01:30:00Z")));
        assert!(!window.contains(t("2030-01-13T03:00:00Z")), "04:00 Berlin: the end is outside");
        assert!(!window.contains(t("2030-01-14T01:30:00Z")), "Monday");
        assert_eq!(window.next_start(t("2030-01-14T01:30:00Z")), Some(t("2030-01-20T01:00:00Z")));
        assert_eq!(window.next_start(t("2030-01-13T01:30:00Z")), Some(t("2030-01-13T01:30:00Z")));
    }

    #[test]
    fn across_a_change_of_the_clocks_a_missing_time_is_skipped_and_a_repeated_one_counted_once() {
        // Berlin: 2030-03-31 02:00 does not exist (the clocks go to 03:00 at 01:00Z);
        // 2030-10-27 02:00-03:00 happens twice (00:00Z-01:00Z, then 01:00Z-02:00Z).
        let berlin = schedule(serde_json::json!({ "name": "night", "timezone": "Europe/Berlin",
            "ranges": [{ "times": ["02:00-03:00"] }] }));
        assert!(!berlin.contains(t("2030-03-31T00:59:00Z")), "01:59 CET");
        assert!(!berlin.contains(t("2030-03-31T01:00:00Z")), "03:00 CEST: the range did not happen");
        assert_eq!(berlin.next_start(t("2030-03-30T23:00:00Z")), Some(t("2030-04-01T00:00:00Z")), "skipped that day");
        assert!(berlin.contains(t("2030-10-27T00:30:00Z")), "02:30 CEST, the first time");
        assert!(!berlin.contains(t("2030-10-27T01:30:00Z")), "02:30 CET, the second time");
        assert!(berlin.contains(t("2030-10-28T01:30:00Z")), "the next day, 02:30 CET");
        // New York: 2030-03-10 02:00-03:00 is missing, 2030-11-03 01:00-02:00 repeated.
        let new_york = schedule(serde_json::json!({ "name": "late", "timezone": "America/New_York",
            "ranges": [{ "times": ["01:00-02:30"] }] }));
        assert!(new_york.contains(t("2030-03-10T06:30:00Z")), "01:30 EST");
        assert!(!new_york.contains(t("2030-03-10T07:15:00Z")), "03:15 EDT: 02:00-02:30 did not happen");
        assert!(new_york.contains(t("2030-11-03T05:30:00Z")), "01:30 EDT, the first time");
        assert!(!new_york.contains(t("2030-11-03T06:30:00Z")), "01:30 EST, the second time");
        assert!(new_york.contains(t("2030-11-03T07:15:00Z")), "02:15 EST: once");
        // A whole day holds through its 25 hours.
        let sunday = schedule(serde_json::json!({ "name": "sunday", "timezone": "America/New_York",
            "ranges": [{ "weekdays": ["sunday"] }] }));
        assert!(sunday.contains(t("2030-11-03T06:30:00Z")));
    }

    #[test]
    fn negative_days_count_from_the_end_of_each_month() {
        let last = schedule(serde_json::json!({ "name": "month-end",
            "ranges": [{ "days_of_month": ["-1"], "times": ["18:00-24:00"] }] }));
        assert!(last.contains(t("2030-02-28T20:00:00Z")), "February's last day");
        assert!(!last.contains(t("2030-02-27T20:00:00Z")));
        assert!(last.contains(t("2032-02-29T23:59:00Z")), "a leap year's");
        assert!(last.contains(t("2030-04-30T18:00:00Z")));
        assert!(!last.contains(t("2030-05-01T00:00:00Z")), "24:00 is the end");
        assert_eq!(last.next_start(t("2030-03-01T00:00:00Z")), Some(t("2030-03-31T18:00:00Z")));
        let quarter = schedule(serde_json::json!({ "name": "q", "ranges": [
            { "months": ["january:march"], "days_of_month": ["1:7"], "years": [2030] },
            { "weekdays": ["saturday:sunday"], "months": [12] }] }));
        assert!(quarter.contains(t("2030-02-03T12:00:00Z")));
        assert!(!quarter.contains(t("2031-02-03T12:00:00Z")), "2031 is not listed");
        assert!(quarter.contains(t("2031-12-06T12:00:00Z")), "a Saturday in December, the other range");
        assert!(!quarter.contains(t("2031-12-08T12:00:00Z")));
    }

    #[test]
    fn bad_ranges_name_their_field() {
        let field = |range: serde_json::Value| {
            serde_json::from_value::<TimeIntervalSpec>(serde_json::json!({ "name": "x", "ranges": [range] }))
                .unwrap()
                .check()
                .unwrap_err()
                .field
        };
        assert_eq!(field(serde_json::json!({ "times": ["17:00-09:00"] })), "ranges[0].times[0]");
        assert_eq!(field(serde_json::json!({ "times": ["9-17"] })), "ranges[0].times[0]");
        assert_eq!(field(serde_json::json!({ "weekdays": ["monday", "funday"] })), "ranges[0].weekdays[1]");
        assert_eq!(field(serde_json::json!({ "days_of_month": ["1:-1"] })), "ranges[0].days_of_month[0]");
        assert_eq!(field(serde_json::json!({ "days_of_month": [0] })), "ranges[0].days_of_month[0]");
        assert_eq!(field(serde_json::json!({ "months": ["march:january"] })), "ranges[0].months[0]");
        let zone = serde_json::json!({ "name": "x", "timezone": "Mars/Olympus", "ranges": [{}] });
        assert_eq!(serde_json::from_value::<TimeIntervalSpec>(zone).unwrap().check().unwrap_err().field, "timezone");
    }
}
