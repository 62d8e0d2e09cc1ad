//! When to try again: a fixed, widening schedule with ±20% jitter (so endpoints that fail
//! together are not hit together again), stretched to whatever `Retry-After` asks.

use jiff::{SignedDuration, Timestamp};

/// The wait after attempt 1, 2, 3, ...; the last one repeats.
const SCHEDULE_SECS: [i64; 9] = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600];
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: SignedDuration = SignedDuration::from_hours(24);

/// The wait after attempt `number` (1-based), jittered by `jitter` in [-1, 1].
pub fn backoff(number: u32, jitter: f64) -> SignedDuration {
    let index = (number.max(1) as usize - 1).min(SCHEDULE_SECS.len() - 1);
    let secs = SCHEDULE_SECS[index] as f64 * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0));
    SignedDuration::from_secs_f64(secs)
}

/// When the next attempt is due after attempt `number`, or `None` when that is past
/// `give_up_at`.
pub fn next_attempt(
    now: Timestamp,
    number: u32,
    retry_after: Option<SignedDuration>,
    give_up_at: Timestamp,
) -> Option<Timestamp> {
    let wait = backoff(number, rand::random_range(-1.0..=1.0));
    let wait = retry_after.map_or(wait, |asked| wait.max(asked.min(MAX_RETRY_AFTER)));
    let next = now.saturating_add(wait).ok()?;
    (next <= give_up_at).then_some(next)
}

/// A `Retry-After` value: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<SignedDuration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u32>() {
        return Some(SignedDuration::from_secs(secs.into()));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    Some(at.duration_since(now).max(SignedDuration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_widens_with_jitter_and_ends() {
        assert_eq!(backoff(1, 0.0), SignedDuration::from_secs(5));
        assert_eq!(backoff(2, 1.0), SignedDuration::from_secs(360));
        assert_eq!(backoff(3, -1.0), SignedDuration::from_secs(24 * 60));
        assert_eq!(backoff(40, 0.0), SignedDuration::from_hours(24));
        let now = Timestamp::UNIX_EPOCH;
        let give_up = now + SignedDuration::from_hours(72);
        assert!(next_attempt(now, 1, None, give_up).unwrap() <= now + SignedDuration::from_secs(6));
        let asked = Some(SignedDuration::from_hours(1));
        assert!(next_attempt(now, 1, asked, give_up).unwrap() >= now + SignedDuration::from_hours(1));
        assert_eq!(next_attempt(give_up, 1, None, give_up), None);
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now: Timestamp = "2015-10-21T07:28:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("120", now), Some(SignedDuration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now), Some(SignedDuration::from_secs(120)));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
