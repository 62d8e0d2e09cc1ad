//! When an alert alarms and resolves: pending periods (`for`), `keep_firing_for` and flapping,
//! on a server whose clock the test moves, across a crash too.

use serde_json::{Value, json};

use crate::alerts::{MONDAY, Scenario, usage};

/// Any usage event in a rolling `window`, for each customer, with `extra` fields.
fn busy(s: &Scenario, window: &str, extra: Value) -> String {
    let mut rule = json!({
        "name": "Busy", "scope": { "type": "each" }, "notify_on_resolve": true,
        "condition": { "kind": "threshold", "window": { "rolling": window }, "operator": ">", "value": 0,
                       "metric": { "event_types": ["usage"], "aggregate": "count" } },
    });
    rule.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    s.rule(rule)
}

/// The clock moved to `offset` and a usage event of customer `alpha` then: the condition holds.
fn burst(s: &Scenario, tag: &str, offset: &str) {
    s.clock(offset);
    s.send(vec![usage(tag, "alpha", offset, 1.0)]);
}

/// The rule's transitions, oldest first, as `previous>current`.
fn moves(s: &Scenario, rule: &str) -> Vec<String> {
    let states = s.states(rule);
    let mut moves: Vec<String> = states["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}>{}", t["previous"].as_str().unwrap(), t["current"].as_str().unwrap()))
        .collect();
    moves.reverse();
    moves
}

#[test]
fn a_pending_alert_alarms_after_for_even_without_events_and_across_a_crash() {
    let mut s = Scenario::start();
    let rule = busy(&s, "1d", json!({ "for": "10m" }));
    burst(&s, "a", "PT1H");
    assert_eq!(s.states(&rule)["items"][0]["state"], "pending");
    assert_eq!(s.counts(&rule)["pending"], 1);
    s.clock("PT1H9M");
    assert!(s.notifications(&rule).is_empty(), "still pending");
    s.clock("PT1H10M");
    let alarm = &s.notifications(&rule)[0];
    assert_eq!(alarm["kind"], "alarm");
    assert_eq!(alarm["context"]["state"], json!({ "previous": "pending", "current": "in_alarm" }));
    assert_eq!(moves(&s, &rule), ["evaluating>pending", "pending>in_alarm"]);

    // Killed while pending; its `for` passes while the server is down: it alarms once on start.
    let rule = busy(
        &s,
        "1d",
        json!({ "for": "30m", "name": "Busy, slowly", "scope": { "type": "customer", "customer_id": "beta" } }),
    );
    s.clock("PT2H");
    s.send(vec![usage("b", "beta", "PT2H", 1.0)]);
    assert_eq!(s.states(&rule)["items"][0]["state"], "pending");
    s.server.crash_and_restart();
    s.clock(MONDAY);
    s.clock("PT3H");
    s.clock("PT3H1M");
    assert_eq!(s.kinds(&rule), ["alarm"]);
    assert_eq!(s.counts(&rule)["in_alarm"], 1);
}

#[test]
fn a_condition_that_stops_holding_before_for_never_alarms() {
    let s = Scenario::start();
    let rule = busy(&s, "5m", json!({ "for": "10m" }));
    burst(&s, "a", "PT1H");
    assert_eq!(s.states(&rule)["items"][0]["state"], "pending");
    s.clock("PT1H6M");
    s.clock("PT1H20M");
    assert!(s.notifications(&rule).is_empty());
    assert_eq!(moves(&s, &rule), ["evaluating>pending", "pending>ok"]);
}

#[test]
fn keep_firing_for_holds_the_alarm_and_a_return_meanwhile_sends_nothing() {
    let s = Scenario::start();
    let rule = busy(&s, "5m", json!({ "keep_firing_for": "30m" }));
    burst(&s, "a", "PT1H");
    assert_eq!(s.kinds(&rule), ["alarm"]);
    s.clock("PT1H10M");
    assert_eq!(s.states(&rule)["items"][0]["state"], "in_alarm", "kept firing after the window emptied");
    burst(&s, "b", "PT1H20M");
    s.clock("PT1H40M");
    assert_eq!(s.kinds(&rule), ["alarm"], "met again within the hold: no resolve, no second alarm");
    s.clock("PT2H10M");
    assert_eq!(s.kinds(&rule), ["alarm", "resolved"]);
    assert_eq!(moves(&s, &rule), ["evaluating>in_alarm", "in_alarm>ok"]);
}

#[test]
fn a_flapping_alert_says_so_once_then_once_more_when_stable() {
    let s = Scenario::start();
    let rule = busy(&s, "5m", json!({ "flapping": { "changes": 4, "within": "1h" } }));
    for (i, minute) in [0, 10, 20, 30].into_iter().enumerate() {
        burst(&s, &format!("f{i}"), &format!("PT1H{minute}M"));
        s.clock(&format!("PT1H{}M", minute + 6));
    }
    // Changes at :06, :10, :16, then the fourth within the hour at :20: flapping. The changes
    // at :26, :30 and :36 notify nothing.
    let before = ["alarm", "resolved", "alarm", "resolved", "flapping"];
    assert_eq!(s.kinds(&rule), before);
    let alert = &s.states(&rule)["items"][0];
    assert_eq!(alert["flapping"]["changes"].as_u64(), Some(7), "{alert}");
    assert_eq!(s.counts(&rule)["flapping"], 1);
    let flapping = s.notifications(&rule)[4].clone();
    assert_eq!(flapping["context"]["flapping"], json!({ "changes": 4, "within": "1h" }));

    // Quiet for the hour after its last change: one stable notice with the count.
    s.clock("PT2H35M");
    assert_eq!(s.kinds(&rule), before);
    s.clock("PT2H37M");
    assert_eq!(s.kinds(&rule), [&before[..], &["stable"]].concat());
    let stable = &s.notifications(&rule)[5];
    assert_eq!(stable["context"]["flapping"]["changes"], 7);
    assert_eq!(stable["context"]["state"]["current"], "ok");
    assert_eq!(s.counts(&rule)["flapping"], 0);
}

#[test]
fn timing_fields_are_refused_where_they_cannot_apply() {
    let s = Scenario::start();
    let refused = |extra: Value, condition: Value| {
        let mut rule = json!({ "name": "x", "scope": { "type": "each" }, "condition": condition });
        rule.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, body) = s.server.call(reqwest::Method::POST, "/v1/rules", &s.key, Some(rule));
        assert_eq!(status, 400, "{body}");
        body["error"]["field"].as_str().unwrap().to_string()
    };
    let threshold = json!({ "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 1,
                            "metric": { "event_types": ["usage"], "aggregate": "count" } });
    let matching = json!({ "kind": "event_match", "matches": [{ "event_type": "signup" }] });
    assert_eq!(refused(json!({ "for": "0s" }), threshold.clone()), "for");
    assert_eq!(refused(json!({ "keep_firing_for": "31d" }), threshold.clone()), "keep_firing_for");
    assert_eq!(refused(json!({ "for": "10m" }), matching.clone()), "for");
    assert_eq!(refused(json!({ "flapping": { "changes": 1, "within": "1h" } }), threshold.clone()), "flapping.changes");
    assert_eq!(refused(json!({ "flapping": { "changes": 3, "within": "1h" } }), matching), "flapping");
    assert_eq!(refused(json!({ "flapping": { "changes": 3 } }), threshold), "flapping.within");
}
