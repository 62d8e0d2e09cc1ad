//! Where one alert (a rule and a scope key) stands, and how an evaluation moves it: the state
//! machine of the design and the pacing of its notifications.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::context::{AlertState, Expected, ForecastRef, Severity, Transition, Window};
use crate::records::notification::Kind;
use crate::rules::{Condition, Flapping, Frequency, RuleSpec};

/// One alert, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertRecord {
    pub state: AlertState,
    /// When it entered its state.
    pub since: Timestamp,
    pub evaluated_at: Option<Timestamp>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub window: Option<Window>,
    pub last_notified: Option<Timestamp>,
    /// Notifications sent in `window` (for `max_per_window`).
    pub sent_in_window: u32,
    /// The steps already fired in `window`.
    pub steps_fired: Vec<f64>,
    /// The newest matching event (inactivity).
    pub last_seen: Option<Timestamp>,
    /// The moment an offset rule last fired for.
    pub fired_for: Option<Timestamp>,
    /// When the scheduler looks at this alert next.
    pub due: Option<Timestamp>,
    /// In alarm, when the condition stopped holding (the rule's `keep_firing_for` runs from
    /// then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<Timestamp>,
    /// The alert's newest state changes within the rule's `flapping.within` (at most
    /// `flapping.changes` of them), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Timestamp>,
    /// Set while it is flapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping: Option<FlappingSince>,
}

/// Since when an alert is flapping, and how many times it changed state since (counting the
/// changes that started it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlappingSince {
    pub since: Timestamp,
    pub changes: usize,
}

impl AlertRecord {
    pub fn new(now: Timestamp) -> Self {
        AlertRecord {
            state: AlertState::Evaluating,
            since: now,
            evaluated_at: None,
            value: None,
            threshold: None,
            window: None,
            last_notified: None,
            sent_in_window: 0,
            steps_fired: Vec::new(),
            last_seen: None,
            fired_for: None,
            due: None,
            cleared_at: None,
            changes: Vec::new(),
            flapping: None,
        }
    }
}

/// How an alert is stored: its record as JSON, then its series of buckets (binary), in one value
/// so an evaluation reads and writes one key.
pub mod stored {
    use super::AlertRecord;
    use crate::series::aggregate::Series;

    pub fn encode(record: &AlertRecord, series: &Series) -> Vec<u8> {
        let json = serde_json::to_vec(record).expect("alert records serialize");
        let series = series.to_bytes();
        let mut bytes = Vec::with_capacity(4 + json.len() + series.len());
        bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&json);
        bytes.extend_from_slice(&series);
        bytes
    }

    /// `None` for bytes that are not a stored alert.
    pub fn decode(bytes: &[u8]) -> Option<(AlertRecord, Series)> {
        let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let json = bytes.get(4..4 + len)?;
        Some((serde_json::from_slice(json).ok()?, Series::from_bytes(&bytes[4 + len..])?))
    }
}

/// What a condition found for one alert.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub firing: bool,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub window: Option<Window>,
    /// The steps reached (a `steps` rule).
    pub steps: Vec<f64>,
    /// A stateless rule's moment came (an `offset` rule).
    pub moment: Option<Timestamp>,
    /// When to look again even if nothing happens.
    pub due: Option<Timestamp>,
    /// An anomaly rule's expectation of the judged bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<Expected>,
    /// A forecast rule's projection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastRef>,
    /// A plugin's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// A plugin's labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A notification to send, before it has a context.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub kind: Kind,
    pub step: Option<f64>,
    pub state: Transition,
    /// For `flapping` and `stable`: the state changes counted.
    pub changes: Option<usize>,
}

impl Due {
    pub fn new(kind: Kind, state: Transition) -> Self {
        Due { kind, step: None, state, changes: None }
    }
}

/// A change of state, as kept in a rule's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransitionRecord {
    pub scope_key: String,
    pub previous: AlertState,
    pub current: AlertState,
    pub at: Timestamp,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
}

/// Moves `record` by `outcome` at `now`: returns the notifications due and the state change,
/// if any.
pub fn apply(
    rule: &RuleSpec,
    record: &mut AlertRecord,
    outcome: &Outcome,
    now: Timestamp,
) -> (Vec<Due>, Option<TransitionRecord>) {
    let previous = record.state;
    if outcome.window.map(|w| w.start) != record.window.map(|w| w.start) {
        record.sent_in_window = 0;
        record.steps_fired.clear();
    }
    record.evaluated_at = Some(now);
    record.value = outcome.value;
    record.threshold = outcome.threshold;
    record.window = outcome.window;
    let (current, waits_until) = next_state(rule, record, outcome.firing, now);
    let state = Transition { previous, current };
    let mut due = Vec::new();
    let capped = |record: &AlertRecord| rule.max_per_window.is_some_and(|cap| record.sent_in_window >= cap);
    let mut send = |record: &mut AlertRecord, kind, step| {
        if !capped(record) {
            record.sent_in_window += 1;
            record.last_notified = Some(now);
            due.push(Due { kind, step, state, changes: None });
        }
    };

    match &rule.condition {
        Condition::Offset { .. } => {
            if let Some(moment) = outcome.moment.filter(|m| record.fired_for != Some(*m)) {
                record.fired_for = Some(moment);
                send(record, Kind::Offset, None);
            }
        }
        Condition::Steps { .. } => {
            for step in &outcome.steps {
                if !record.steps_fired.contains(step) {
                    record.steps_fired.push(*step);
                    send(record, Kind::Step, Some(*step));
                }
            }
        }
        _ if current == AlertState::InAlarm && previous != AlertState::InAlarm => {
            if outcome.window.is_none() {
                // Without windows the cap counts per alarm.
                record.sent_in_window = 0;
            }
            send(record, Kind::Alarm, None);
        }
        _ if current == AlertState::InAlarm => {
            if let Frequency::Every(every) = rule.frequency
                && record.last_notified.is_none_or(|at| at + every.0 <= now)
            {
                send(record, Kind::Reminder, None);
            }
        }
        _ => {}
    }
    if previous == AlertState::InAlarm && current == AlertState::Ok && rule.notify_on_resolve {
        due.push(Due::new(Kind::Resolved, state));
    }
    let changed = previous != current && !matches!(rule.condition, Condition::Offset { .. });
    let flapping_until = rule.flapping.as_ref().and_then(|f| flap(f, record, changed, state, &mut due, now));

    // A capped alert waits for its window to move (the rule's tick evaluates it then).
    let reminder = match (current, rule.frequency, &rule.condition) {
        (AlertState::InAlarm, Frequency::Every(every), c)
            if !matches!(c, Condition::Steps { .. }) && !capped(record) =>
        {
            Some(record.last_notified.unwrap_or(now) + every.0)
        }
        _ => None,
    };
    // Only future times: a timer due now would run again at once.
    record.due =
        [outcome.due, reminder, waits_until, flapping_until].into_iter().flatten().filter(|due| *due > now).min();

    let transition = changed.then(|| {
        record.state = current;
        record.since = now;
        TransitionRecord {
            scope_key: String::new(),
            previous,
            current,
            at: now,
            value: outcome.value,
            threshold: outcome.threshold,
        }
    });
    (due, transition)
}

/// The state a stateful alert moves to when its condition holds (`firing`) or not, with the
/// moment it must be looked at again even if nothing happens: a `pending` alert's `for` runs
/// out, or an alert kept firing after its condition cleared reaches `keep_firing_for`.
fn next_state(
    rule: &RuleSpec,
    record: &mut AlertRecord,
    firing: bool,
    now: Timestamp,
) -> (AlertState, Option<Timestamp>) {
    let previous = record.state;
    if firing {
        record.cleared_at = None;
        return match rule.pending_for {
            Some(wait) if previous != AlertState::InAlarm => {
                let since = if previous == AlertState::Pending { record.since } else { now };
                let until = since + wait.0;
                if now >= until { (AlertState::InAlarm, None) } else { (AlertState::Pending, Some(until)) }
            }
            _ => (AlertState::InAlarm, None),
        };
    }
    match rule.keep_firing_for {
        Some(keep) if previous == AlertState::InAlarm => {
            let until = *record.cleared_at.get_or_insert(now) + keep.0;
            if now < until {
                return (AlertState::InAlarm, Some(until));
            }
            record.cleared_at = None;
            (AlertState::Ok, None)
        }
        _ => (AlertState::Ok, None),
    }
}

/// Counts a state change towards `flapping`. An alert that changed `changes` times within the
/// window starts flapping: its alarm, reminder and resolved notices give way to one `flapping`
/// notice, and to one `stable` notice once it has not changed for the window. Answers when to
/// look again for that.
fn flap(
    flapping: &Flapping,
    record: &mut AlertRecord,
    changed: bool,
    state: Transition,
    due: &mut Vec<Due>,
    now: Timestamp,
) -> Option<Timestamp> {
    let (enough, within) = (flapping.changes as usize, flapping.within.0);
    let changed = changed && state.previous != AlertState::Evaluating;
    if changed {
        record.changes.push(now);
        let extra = record.changes.len().saturating_sub(enough);
        record.changes.drain(..extra);
    }
    record.changes.retain(|at| *at + within > now);
    let notice = |kind, changes| Due { changes: Some(changes), ..Due::new(kind, state) };
    match &mut record.flapping {
        None if record.changes.len() >= enough => {
            record.flapping = Some(FlappingSince { since: now, changes: enough });
            due.retain(|d| !d.kind.is_state_notice());
            due.push(notice(Kind::Flapping, enough));
        }
        None => {}
        Some(flapping) => {
            due.retain(|d| !d.kind.is_state_notice());
            flapping.changes += usize::from(changed);
            if record.changes.is_empty() {
                due.push(notice(Kind::Stable, flapping.changes));
                record.flapping = None;
            }
        }
    }
    record.flapping.and(record.changes.last().map(|at| *at + within))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(extra: serde_json::Value) -> RuleSpec {
        let mut spec = json!({
            "name": "r",
            "condition": { "kind": "threshold", "operator": ">", "value": 10.0, "window": { "calendar": "day" },
                           "metric": { "event_types": ["x"], "aggregate": "count" } },
            "scope": { "type": "all" },
        });
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(spec).unwrap()
    }

    fn at(minutes: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_mins(minutes)
    }

    fn firing(firing: bool) -> Outcome {
        Outcome { firing, window: Some(Window { start: at(0), end: at(1440) }), ..Outcome::default() }
    }

    #[test]
    fn an_alarm_notifies_once_and_resolves_when_asked() {
        let rule = rule(json!({ "notify_on_resolve": true }));
        let mut record = AlertRecord::new(at(0));
        let (due, transition) = apply(&rule, &mut record, &firing(false), at(1));
        assert!(due.is_empty());
        assert_eq!(transition.unwrap().current, AlertState::Ok);
        let (due, _) = apply(&rule, &mut record, &firing(true), at(2));
        assert_eq!(due[0].kind, Kind::Alarm);
        let (due, transition) = apply(&rule, &mut record, &firing(true), at(3));
        assert!(due.is_empty() && transition.is_none(), "once per alarm");
        let (due, _) = apply(&rule, &mut record, &firing(false), at(4));
        assert_eq!((due[0].kind, due[0].state.previous), (Kind::Resolved, AlertState::InAlarm));
    }

    #[test]
    fn a_pending_alert_alarms_only_when_the_condition_held_for_its_for() {
        let rule = rule(json!({ "for": "10m", "notify_on_resolve": true }));
        let mut record = AlertRecord::new(at(0));
        let (due, transition) = apply(&rule, &mut record, &firing(true), at(1));
        assert!(due.is_empty());
        assert_eq!((transition.unwrap().current, record.due), (AlertState::Pending, Some(at(11))));
        assert!(apply(&rule, &mut record, &firing(true), at(5)).0.is_empty(), "still pending");
        assert_eq!(record.due, Some(at(11)), "for counts from entering pending");
        let (due, transition) = apply(&rule, &mut record, &firing(true), at(11));
        assert_eq!((due[0].kind, due[0].state.previous), (Kind::Alarm, AlertState::Pending));
        assert_eq!(transition.unwrap().current, AlertState::InAlarm);

        // Met, then not met before `for`: back to ok without a word.
        let mut record = AlertRecord::new(at(0));
        apply(&rule, &mut record, &firing(true), at(1));
        let (due, transition) = apply(&rule, &mut record, &firing(false), at(5));
        assert!(due.is_empty());
        assert_eq!((transition.unwrap().current, record.due), (AlertState::Ok, None));
    }

    #[test]
    fn keep_firing_for_holds_the_alarm_after_the_condition_clears() {
        let rule = rule(json!({ "keep_firing_for": "30m", "notify_on_resolve": true }));
        let mut record = AlertRecord::new(at(0));
        assert_eq!(apply(&rule, &mut record, &firing(true), at(0)).0[0].kind, Kind::Alarm);
        let (due, transition) = apply(&rule, &mut record, &firing(false), at(10));
        assert!(due.is_empty() && transition.is_none());
        assert_eq!((record.state, record.due), (AlertState::InAlarm, Some(at(40))));
        // Met again meanwhile: no resolve, and the hold starts over when it clears next.
        assert!(apply(&rule, &mut record, &firing(true), at(20)).0.is_empty());
        assert!(apply(&rule, &mut record, &firing(false), at(50)).0.is_empty());
        assert_eq!(record.due, Some(at(80)));
        let (due, transition) = apply(&rule, &mut record, &firing(false), at(80));
        assert_eq!((due[0].kind, transition.unwrap().current), (Kind::Resolved, AlertState::Ok));
    }

    #[test]
    fn a_flapping_alert_says_so_once_and_again_when_stable() {
        let rule = rule(json!({ "flapping": { "changes": 3, "within": "1h" }, "notify_on_resolve": true }));
        let mut record = AlertRecord::new(at(0));
        let kinds = |record: &mut AlertRecord, fire: bool, minute: i64| -> Vec<(Kind, Option<usize>)> {
            apply(&rule, record, &firing(fire), at(minute)).0.iter().map(|d| (d.kind, d.changes)).collect()
        };
        assert_eq!(kinds(&mut record, false, 0), vec![], "evaluating to ok is not a change");
        assert_eq!(kinds(&mut record, true, 1), vec![(Kind::Alarm, None)]);
        assert_eq!(kinds(&mut record, false, 2), vec![(Kind::Resolved, None)]);
        assert_eq!(kinds(&mut record, true, 3), vec![(Kind::Flapping, Some(3))]);
        assert_eq!(record.flapping, Some(FlappingSince { since: at(3), changes: 3 }));
        assert_eq!(record.due, Some(at(63)));
        assert_eq!(kinds(&mut record, false, 10), vec![], "no resolve while flapping");
        assert_eq!(kinds(&mut record, true, 20), vec![], "no alarm while flapping");
        assert_eq!(record.due, Some(at(80)), "stable once an hour passes without a change");
        assert_eq!(kinds(&mut record, true, 80), vec![(Kind::Stable, Some(5))]);
        assert_eq!((record.flapping, record.state, record.due), (None, AlertState::InAlarm, None));
        // Changes spread wider than the window never flap.
        for (i, fire) in [false, true, false, true].into_iter().enumerate() {
            let kinds = kinds(&mut record, fire, 200 + 61 * i as i64);
            assert!(!kinds.iter().any(|(k, _)| *k == Kind::Flapping), "{kinds:?}");
        }
    }

    #[test]
    fn reminders_follow_the_frequency_and_the_cap() {
        let rule = rule(json!({ "frequency": { "every": "1h" }, "max_per_window": 2 }));
        let mut record = AlertRecord::new(at(0));
        assert_eq!(apply(&rule, &mut record, &firing(true), at(0)).0.len(), 1);
        assert_eq!(record.due, Some(at(60)));
        assert!(apply(&rule, &mut record, &firing(true), at(30)).0.is_empty());
        assert_eq!(apply(&rule, &mut record, &firing(true), at(60)).0[0].kind, Kind::Reminder);
        assert!(apply(&rule, &mut record, &firing(true), at(120)).0.is_empty(), "capped at 2 per window");
        assert_eq!(record.due, None, "nothing to remind of until the window moves");
    }
}
