//! Time windows: which bucket an event is counted in, and which buckets make up a window.
//!
//! A calendar window (hour, day, week from Monday, month, quarter, cut in the rule's timezone)
//! is one bucket. A rolling window of duration `d` is made of `ROLLING_SLICES` slices of
//! `d / ROLLING_SLICES` each, so it moves forward a slice at a time without keeping events.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::context::Window;
use crate::duration::Duration;

/// A calendar window (in the rule's timezone; weeks start on Monday) or a rolling duration.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowSpec {
    Calendar(CalendarUnit),
    Rolling(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarUnit {
    Hour,
    Day,
    Week,
    Month,
    Quarter,
}

/// How many slices a rolling window is cut into.
pub const ROLLING_SLICES: i64 = 60;

/// A rule's windows, ready to compute with.
#[derive(Debug, Clone)]
pub enum Span {
    Calendar {
        unit: CalendarUnit,
        tz: TimeZone,
    },
    /// Slices of `slice` seconds; a window is `slices` of them.
    Rolling {
        slice: i64,
        slices: i64,
    },
    /// One window holding all time (a balance without a window).
    Ever,
}

/// A window and the buckets it is made of: those from `first` to `last`, both included
/// (bucket ids are their start in Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub window: Window,
    pub first: i64,
    pub last: i64,
}

impl Span {
    pub fn new(spec: Option<&WindowSpec>, tz: &str) -> Span {
        match spec {
            None => Span::Ever,
            Some(WindowSpec::Calendar(unit)) => {
                // Rules are checked at save time, so the zone is known; UTC covers a zone a
                // newer save removed from the database.
                Span::Calendar { unit: *unit, tz: TimeZone::get(tz).unwrap_or(TimeZone::UTC) }
            }
            Some(WindowSpec::Rolling(d)) => {
                let total = d.0.as_secs().max(1);
                let slice = (total / ROLLING_SLICES).max(1);
                Span::Rolling { slice, slices: (total / slice).max(1) }
            }
        }
    }

    /// The bucket an event at `at` is counted in.
    pub fn bucket(&self, at: Timestamp) -> i64 {
        match self {
            Span::Calendar { unit, tz } => calendar_start(*unit, tz, at).as_second(),
            Span::Rolling { slice, .. } => at.as_second().div_euclid(*slice) * slice,
            Span::Ever => 0,
        }
    }

    /// The window that holds `now`.
    pub fn current(&self, now: Timestamp) -> Period {
        match self {
            Span::Calendar { unit, tz } => {
                let start = calendar_start(*unit, tz, now);
                let end = calendar_step(*unit, tz, start, 1);
                Period { window: Window { start, end }, first: start.as_second(), last: start.as_second() }
            }
            Span::Rolling { slice, slices } => {
                let last = self.bucket(now);
                rolling(last - (slices - 1) * slice, *slice, *slices)
            }
            Span::Ever => Period { window: Window { start: Timestamp::MIN, end: Timestamp::MAX }, first: 0, last: 0 },
        }
    }

    /// The window just before `period` (itself for `Ever`).
    pub fn previous(&self, period: &Period) -> Period {
        match self {
            Span::Calendar { unit, tz } => {
                let start = calendar_step(*unit, tz, period.window.start, -1);
                let first = start.as_second();
                Period { window: Window { start, end: period.window.start }, first, last: first }
            }
            Span::Rolling { slice, slices } => rolling(period.first - slices * slice, *slice, *slices),
            Span::Ever => *period,
        }
    }

    /// The newest window that has ended: the one before the current calendar window; for a
    /// rolling window, the current one (it always spans its full length).
    pub fn completed(&self, now: Timestamp) -> Period {
        let current = self.current(now);
        match self {
            Span::Calendar { .. } => self.previous(&current),
            Span::Rolling { .. } | Span::Ever => current,
        }
    }

    /// The oldest bucket still needed at `now`: the current window, the newest completed one
    /// and the one before it (what `percent_change` and plugins compare) are kept.
    pub fn oldest_kept(&self, now: Timestamp) -> i64 {
        self.previous(&self.completed(now)).first
    }

    /// When the windows next move: the end of the current calendar window, the next slice of
    /// a rolling one; never for `Ever`.
    pub fn next_move(&self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Span::Calendar { .. } => Some(self.current(now).window.end),
            Span::Rolling { slice, .. } => Timestamp::from_second(self.bucket(now) + slice).ok(),
            Span::Ever => None,
        }
    }
}

fn rolling(first: i64, slice: i64, slices: i64) -> Period {
    let at = |s: i64| Timestamp::from_second(s).unwrap_or(Timestamp::MIN);
    Period {
        window: Window { start: at(first), end: at(first + slices * slice) },
        first,
        last: first + (slices - 1) * slice,
    }
}

/// The start of the calendar window holding `at`, in `tz`.
fn calendar_start(unit: CalendarUnit, tz: &TimeZone, at: Timestamp) -> Timestamp {
    let local = at.to_zoned(tz.clone());
    let date = local.date();
    let first_day = match unit {
        CalendarUnit::Hour => {
            let hour = local.datetime().with().minute(0).second(0).subsec_nanosecond(0).build();
            return hour.ok().and_then(|h| h.to_zoned(tz.clone()).ok()).map_or(at, |z| z.timestamp().min(at));
        }
        CalendarUnit::Day => date,
        CalendarUnit::Week => date - (date.weekday().to_monday_zero_offset() as i64).days(),
        CalendarUnit::Month => date.first_of_month(),
        CalendarUnit::Quarter => {
            let month = (date.month() - 1) / 3 * 3 + 1;
            Date::new(date.year(), month, 1).unwrap_or(date)
        }
    };
    midnight(first_day, tz)
}

/// The start of the window `steps` windows after (or before) the one starting at `start`.
fn calendar_step(unit: CalendarUnit, tz: &TimeZone, start: Timestamp, steps: i64) -> Timestamp {
    if unit == CalendarUnit::Hour {
        return start + SignedDuration::from_hours(steps);
    }
    let date = start.to_zoned(tz.clone()).date();
    let moved = match unit {
        CalendarUnit::Hour | CalendarUnit::Day => date.checked_add(steps.days()),
        CalendarUnit::Week => date.checked_add((7 * steps).days()),
        CalendarUnit::Month => date.checked_add(steps.months()),
        CalendarUnit::Quarter => date.checked_add((3 * steps).months()),
    };
    moved.map_or(if steps > 0 { Timestamp::MAX } else { Timestamp::MIN }, |d| midnight(d, tz))
}

fn midnight(date: Date, tz: &TimeZone) -> Timestamp {
    date.to_zoned(tz.clone()).map_or(Timestamp::MIN, |z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Duration;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn calendar(unit: CalendarUnit, tz: &str) -> Span {
        Span::new(Some(&WindowSpec::Calendar(unit)), tz)
    }

    #[test]
    fn calendar_windows_follow_the_calendar_in_the_rules_timezone() {
        let now = ts("2026-11-19T10:30:00Z"); // a Thursday
        let week = calendar(CalendarUnit::Week, "UTC").current(now);
        assert_eq!((week.window.start, week.window.end), (ts("2026-11-16T00:00:00Z"), ts("2026-11-23T00:00:00Z")));
        let quarter = calendar(CalendarUnit::Quarter, "UTC").current(now);
        assert_eq!(
            (quarter.window.start, quarter.window.end),
            (ts("2026-10-01T00:00:00Z"), ts("2027-01-01T00:00:00Z"))
        );
        let berlin = calendar(CalendarUnit::Day, "Europe/Berlin").current(ts("2026-11-19T23:30:00Z"));
        assert_eq!(berlin.window.start, ts("2026-11-19T23:00:00Z"), "already the 20th in Berlin");
        let month = calendar(CalendarUnit::Month, "UTC");
        let previous = month.previous(&month.current(now));
        assert_eq!(
            (previous.window.start, previous.window.end),
            (ts("2026-10-01T00:00:00Z"), ts("2026-11-01T00:00:00Z"))
        );
        assert_eq!(month.completed(now), previous);
        assert_eq!(month.next_move(now), Some(ts("2026-12-01T00:00:00Z")));
        let hour = calendar(CalendarUnit::Hour, "Asia/Kolkata").current(ts("2026-11-19T10:20:00Z"));
        assert_eq!(hour.window.start, ts("2026-11-19T09:30:00Z"), "local hours in a half-hour zone");
        let dst = calendar(CalendarUnit::Day, "Europe/Berlin").current(ts("2026-10-25T12:00:00Z"));
        assert_eq!(
            dst.window.end.duration_since(dst.window.start),
            SignedDuration::from_hours(25),
            "the day clocks go back"
        );
    }

    #[test]
    fn rolling_windows_move_a_slice_at_a_time() {
        let span = Span::new(Some(&WindowSpec::Rolling("1h".parse::<Duration>().unwrap())), "UTC");
        let now = ts("2026-11-19T10:30:30Z");
        let current = span.current(now);
        assert_eq!((current.last - current.first) / 60 + 1, 60, "60 slices of a minute");
        assert_eq!(current.window.end, ts("2026-11-19T10:31:00Z"));
        assert_eq!(current.window.start, ts("2026-11-19T09:31:00Z"));
        assert_eq!(span.bucket(now), ts("2026-11-19T10:30:00Z").as_second());
        let previous = span.previous(&current);
        assert_eq!(previous.window.end, current.window.start);
        assert_eq!(span.next_move(now), Some(ts("2026-11-19T10:31:00Z")));
    }
}
