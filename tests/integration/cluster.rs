//! Several `klaxon serve` nodes on one PostgreSQL database: they share the tenants' partitions,
//! alarm once however the events are spread over them, take over a killed node's partitions
//! with every acknowledged event delivered, write nothing stale after a pause past their lease,
//! and use a rule or a plugin changed on another node within a second.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::postgres::on;
use crate::receivers::Receiver;
use crate::support::{ADMIN, Server, guests, read};

/// Leases short enough for the tests to see them move.
const LEASE: Duration = Duration::from_secs(2);

fn nodes(count: usize) -> Vec<Server> {
    let url = klaxon_test_postgres::shared().database();
    let config = format!("{}[cluster]\nlease = \"{}s\"\n", on(&url), LEASE.as_secs());
    let nodes: Vec<Server> = (0..count).map(|_| Server::start_with(Some(&config), &[])).collect();
    wait_until("every node holds its share", || {
        let view = view(&nodes[0]);
        let holders = view["nodes"].as_array().unwrap().iter().filter(|n| !n["leases"].as_array().unwrap().is_empty());
        holders.count() == count && held(&view).len() == 256
    });
    nodes
}

fn view(node: &Server) -> Value {
    let (status, body) = node.call(Method::GET, "/v1/cluster", ADMIN, None);
    assert_eq!(status, 200, "{body}");
    body
}

/// Every partition held, by its holder.
fn held(view: &Value) -> Vec<(u64, String)> {
    let mut held: Vec<(u64, String)> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| {
            n["leases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| (l["partition"].as_u64().unwrap(), n["node"].as_str().unwrap().to_string()))
        })
        .collect();
    held.sort();
    held.dedup_by_key(|(p, _)| *p);
    held
}

/// The node holding `tenant`'s partition, by its index in `nodes`.
fn holder(nodes: &[Server], tenant: &str) -> usize {
    let partition = u64::from(klaxon::cluster::partition(tenant));
    let owner = held(&view(&nodes[0])).into_iter().find(|(p, _)| *p == partition).expect("held").1;
    nodes.iter().position(|n| view(n)["node"] == owner.as_str()).expect("one of the nodes")
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "waited for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(node: &Server, signal: &str) {
    let status = Command::new("kill").args([&format!("-{signal}"), &node.pid().to_string()]).status();
    assert!(status.expect("kill runs").success());
}

/// A tenant with a webhook to `receiver` and a rule notifying it of every `signup`.
fn tenant(node: &Server, receiver: &Receiver) -> (String, String) {
    let (tenant, key) = node.tenant("acme");
    let (status, channel) = node.call(
        Method::POST,
        "/v1/channels",
        &key,
        Some(json!({ "name": "ops", "kind": "webhook", "url": receiver.url })),
    );
    assert_eq!(status, 201, "{channel}");
    let rule = json!({
        "name": "New signup", "scope": { "type": "each" }, "channels": [channel["id"]],
        "condition": { "kind": "event_match", "matches": [{ "event_type": "signup" }] },
    });
    assert_eq!(node.call(Method::POST, "/v1/rules", &key, Some(rule)).0, 201);
    // The other nodes hear of the change when it commits (within milliseconds; within a second
    // at worst, from the change feed).
    std::thread::sleep(Duration::from_millis(200));
    (tenant, key)
}

fn send(node: &Server, key: &str, events: Vec<Value>) -> (u16, Value) {
    node.call(Method::POST, "/v1/events", key, Some(json!({ "events": events })))
}

fn signup(id: &str, customer: &str) -> Value {
    json!({ "id": id, "customer_id": customer, "type": "signup", "timestamp": jiff::Timestamp::now() })
}

/// The event ids of the webhooks `receiver` got.
fn delivered(receiver: &Receiver) -> Vec<String> {
    receiver
        .requests()
        .iter()
        .map(|r| r.json()["data"]["event"]["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn three_nodes_alarm_once_and_use_a_rule_changed_on_another_within_a_second() {
    let nodes = nodes(3);
    // Each node's metrics say which node it is and how many partitions it holds.
    let held: Vec<f64> = nodes.iter().map(|n| n.metric("klaxon_partitions_held")).collect();
    assert!(held.iter().all(|h| *h > 0.0) && held.iter().sum::<f64>() == 256.0, "{held:?}");
    for node in &nodes {
        assert_eq!(node.metric(&format!("klaxon_node_info{{node={}}}", view(node)["node"])), 1.0);
    }
    let receiver = Receiver::start();
    let (tenant, key) = tenant(&nodes[0], &receiver);
    let (_, channels) = nodes[0].call(Method::GET, "/v1/channels", &key, None);
    let channel = channels["items"][0]["id"].clone();
    let threshold = json!({
        "name": "Busy day", "scope": { "type": "all" }, "channels": [channel],
        "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 20,
                       "metric": { "event_types": ["usage"], "aggregate": "count" } },
    });
    let (status, rule) = nodes[0].call(Method::POST, "/v1/rules", &key, Some(threshold));
    assert_eq!(status, 201, "{rule}");
    let rule = rule["id"].as_str().unwrap().to_string();

    // 60 events, sent by three clients at once, each to its own node.
    std::thread::scope(|s| {
        for (n, node) in nodes.iter().enumerate() {
            let key = &key;
            s.spawn(move || {
                for i in 0..20 {
                    let event = json!({ "id": format!("u{n}-{i}"), "customer_id": format!("cus_{i}"), "type": "usage",
                                        "timestamp": jiff::Timestamp::now() });
                    let (status, body) = send(node, key, vec![event]);
                    assert_eq!(status, 200, "{body}");
                }
            });
        }
    });
    let alarms = |node: &Server| {
        let (_, page) = node.call(Method::GET, &format!("/v1/notifications?rule_id={rule}"), &key, None);
        page["items"].as_array().unwrap().len()
    };
    // The tenant's batches went on to the node holding it, which evaluated them all.
    let owner = holder(&nodes, &tenant);
    for (n, node) in nodes.iter().enumerate() {
        let forwarded = node.metric(r#"klaxon_ingest_forwarded_total{outcome="answered"}"#);
        assert_eq!(forwarded > 0.0, n != owner, "node {n} forwarded {forwarded} (holder: {owner})");
    }
    for node in &nodes {
        assert_eq!(alarms(node), 1, "one alarm, whichever node is asked");
        // Each node counts the types it ingests in a catalogue entry of its own; reading merges them.
        let (_, types) = node.call(Method::GET, "/v1/event-types", &key, None);
        let usage: Vec<&Value> = types["items"].as_array().unwrap().iter().filter(|t| t["type"] == "usage").collect();
        assert_eq!((usage.len(), &usage[0]["count"]), (1, &json!(60)), "{types}");
    }
    wait_until("the alarm's webhook", || receiver.requests().len() == 1);
    std::thread::sleep(LEASE);
    assert_eq!(receiver.requests().len(), 1, "delivered once");

    // An event ingested by a node that does not hold the tenant (as when the holder cannot be
    // reached; here the batch says it was forwarded already) is delivered by the one that does,
    // woken by the database at once (not at its next pass over the queue, up to a second later).
    let mut waits = Vec::new();
    for (i, node) in nodes.iter().enumerate().filter(|(n, _)| *n != owner).cycle().take(6) {
        let before = receiver.requests().len();
        let sent = Instant::now();
        let id = format!("far-{}-{}", i, waits.len());
        let (status, body) = read(
            node.request(Method::POST, "/v1/events", Some(&key))
                .header("klaxon-forwarded-by", "test")
                .json(&json!({ "events": [signup(&id, "cus_1")] })),
        );
        assert_eq!((status, &body["notifications"]), (200, &json!(1)), "{body}");
        wait_until("the webhook", || receiver.requests().len() > before);
        waits.push(sent.elapsed());
    }
    waits.sort();
    assert!(waits[3] < Duration::from_millis(300), "event to webhook across nodes: {waits:?}");

    // Node 3 has the tenant's rules cached; a change made on node 1 is in force there within a
    // second.
    assert_eq!(send(&nodes[2], &key, vec![signup("s1", "cus_1")]).1["notifications"], 1);
    let (_, rules) = nodes[0].call(Method::GET, "/v1/rules", &key, None);
    let signup_rule =
        rules["items"].as_array().unwrap().iter().find(|r| r["name"] == "New signup").unwrap()["id"].clone();
    let (status, body) =
        nodes[0].call(Method::DELETE, &format!("/v1/rules/{}", signup_rule.as_str().unwrap()), &key, None);
    assert_eq!(status, 204, "{body}");
    let changed = Instant::now();
    wait_until("node 3 stops matching signups", || {
        let id = format!("s-{}", changed.elapsed().as_micros());
        send(&nodes[2], &key, vec![signup(&id, "cus_1")]).1["notifications"] == 0
    });
    assert!(changed.elapsed() < Duration::from_secs(1), "in force after {:?}", changed.elapsed());
}

#[test]
fn a_killed_node_s_partitions_move_and_every_acknowledged_event_is_delivered() {
    let mut nodes = nodes(3);
    let receiver = Receiver::start();
    let (tenant, key) = tenant(&nodes[0], &receiver);
    let owner = holder(&nodes, &tenant);
    let survivors: Vec<usize> = (0..3).filter(|n| *n != owner).collect();

    let mut acknowledged = Vec::new();
    let mut killed_at = None;
    for i in 0..150 {
        let node = &nodes[[owner, survivors[0], survivors[1]][i % 3]];
        if i == 60 {
            signal(&nodes[owner], "KILL");
            killed_at = Some(Instant::now());
        }
        let id = format!("e{i}");
        let events = json!({ "events": [signup(&id, &format!("cus_{}", i % 7))] });
        // The killed node answers nothing: those events are not acknowledged.
        let Ok(answer) = node.request(Method::POST, "/v1/events", Some(&key)).json(&events).send() else { continue };
        if answer.status() == 200 {
            let body: Value = answer.json().unwrap();
            assert_eq!(body["accepted"], 1, "{body}");
            acknowledged.push(id);
        }
    }
    assert_eq!(acknowledged.len(), 60 + 60, "every event before the kill, and every one the survivors got");
    let unreachable = |n: usize| nodes[n].metric(r#"klaxon_ingest_forwarded_total{outcome="failed"}"#);
    assert!(
        survivors.iter().any(|n| unreachable(*n) > 0.0),
        "the survivors found the dead holder unreachable and ingested themselves"
    );
    let survivor = &nodes[survivors[0]];
    wait_until("a survivor holds the tenant's partition", || {
        let partition = u64::from(klaxon::cluster::partition(&tenant));
        let owner_now = held(&view(survivor)).into_iter().find(|(p, _)| *p == partition).map(|(_, n)| n);
        owner_now.is_some_and(|n| survivors.iter().any(|s| view(&nodes[*s])["node"] == n.as_str()))
    });
    let moved_after = killed_at.unwrap().elapsed();
    assert!(moved_after < LEASE * 2 + Duration::from_secs(2), "moved after {moved_after:?}");
    wait_until("every acknowledged event's webhook", || {
        let got: HashSet<String> = delivered(&receiver).into_iter().collect();
        acknowledged.iter().all(|id| got.contains(id))
    });
    nodes[owner].stop("KILL");
}

#[test]
fn a_paused_node_writes_nothing_stale_when_it_resumes() {
    let nodes = nodes(2);
    let receiver = Receiver::start();
    let (tenant, key) = tenant(&nodes[0], &receiver);
    let owner = holder(&nodes, &tenant);
    let other = &nodes[1 - owner];
    // A timer falls due while the owner is paused: seven days before a contract ends, 5 s on.
    let ends = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(7 * 24) + jiff::SignedDuration::from_secs(5);
    let fields = json!({ "fields": { "contract_end": ends.to_string() } });
    assert_eq!(other.call(Method::PUT, "/v1/customers/renewing", &key, Some(fields)).0, 201);
    let offset = json!({ "name": "Contract ends in 7 days", "scope": { "type": "each" },
                         "condition": { "kind": "offset", "field": "contract_end", "offset": "-7d" } });
    let (status, offset) = other.call(Method::POST, "/v1/rules", &key, Some(offset));
    assert_eq!(status, 201, "{offset}");
    let of_rule = |rule: &Value| {
        let (_, page) =
            other.call(Method::GET, &format!("/v1/notifications?rule_id={}", rule["id"].as_str().unwrap()), &key, None);
        page["items"].as_array().unwrap().clone()
    };
    let (_, rules) = other.call(Method::GET, "/v1/rules", &key, None);
    let signups = rules["items"].as_array().unwrap().iter().find(|r| r["name"] == "New signup").unwrap().clone();
    // The owner's attempt is under way when it is paused.
    receiver.delay(Duration::from_secs(3));
    let (status, body) = send(&nodes[owner], &key, vec![signup("e1", "cus_1")]);
    assert_eq!((status, &body["notifications"]), (200, &json!(1)), "{body}");
    wait_until("the owner's attempt reached the receiver", || !receiver.requests().is_empty());
    signal(&nodes[owner], "STOP");
    let paused_at = jiff::Timestamp::now();

    // The other node takes the partition and attempts the delivery again (at least once).
    wait_until("the other node delivered it", || of_rule(&signups)[0]["status"] == "delivered");
    wait_until("the other node fired the timer", || !of_rule(&offset).is_empty());
    signal(&nodes[owner], "CONT");
    std::thread::sleep(LEASE * 2);

    assert_eq!(of_rule(&offset).len(), 1, "the timer fired once");
    let items = of_rule(&signups);
    assert_eq!(items.len(), 1, "no second notification: {items:#?}");
    let id = items[0]["id"].as_str().unwrap();
    let (_, notification) = other.call(Method::GET, &format!("/v1/notifications/{id}"), &key, None);
    let attempts = notification["deliveries"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{notification:#}");
    let recorded: jiff::Timestamp = attempts[0]["at"].as_str().unwrap().parse().unwrap();
    assert!(recorded > paused_at, "the record is the other node's; the resumed node's was stale and dropped");
    assert_eq!(notification["status"], "delivered");
    assert_eq!(receiver.requests().len(), 2, "sent twice (at least once), recorded once");
}

#[test]
fn a_cohort_saved_on_any_node_is_computed_where_its_tenant_is_held() {
    let nodes = nodes(2);
    let (tenant, key) = nodes[0].tenant("acme");
    let elsewhere = &nodes[1 - holder(&nodes, &tenant)];
    let events: Vec<Value> = (0..20).map(|i| signup(&format!("e{i}"), &format!("cus_{i}"))).collect();
    assert_eq!(send(elsewhere, &key, events).0, 200);
    let spec = json!({ "name": "Signed up", "criteria": [{ "kind": "performed", "event_type": "signup",
                       "within": { "rolling": "1d" } }] });
    let (status, cohort) = elsewhere.call(Method::POST, "/v1/cohorts", &key, Some(spec));
    assert_eq!((status, &cohort["status"]), (201, &json!("computing")), "{cohort}");
    let path = format!("/v1/cohorts/{}", cohort["id"].as_str().unwrap());
    wait_until("the holder computed it", || elsewhere.call(Method::GET, &path, &key, None).1["status"] == "ready");
    let (_, members) = elsewhere.call(Method::GET, &format!("{path}/members"), &key, None);
    assert_eq!(members["items"].as_array().map(Vec::len), Some(20), "{members}");
}

#[test]
fn a_plugin_uploaded_again_on_one_node_runs_its_new_code_on_another() {
    let nodes = nodes(2);
    let (tenant, key) = nodes[0].tenant("acme");
    let mut input = crate::support::evaluation(json!({ "drop_percent": 20 }));
    input["value"] = json!({ "current": 10, "previous": 100 });
    input["customer"] = json!({ "id": "cus_a" });
    assert_eq!(nodes[0].upload(&key, "verdict", "condition", &guests().week_over_week_drop).0, 201);
    let (status, body) = nodes[1].invoke(&key, "verdict", input.clone());
    assert_eq!((status, &body["output"]["fire"]), (200, &json!(true)), "compiled and run on the other node: {body}");
    let artifacts = nodes[1].data().join("artifacts").join(&tenant).join("verdict");
    let files = || {
        let mut names: Vec<String> =
            std::fs::read_dir(&artifacts).unwrap().map(|f| f.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    let sha = |node: &Server| {
        let (_, versions) = node.call(Method::GET, "/v1/plugins/verdict/versions", &key, None);
        versions["items"][0]["sha256"].as_str().unwrap()[..16].to_string()
    };
    let first = sha(&nodes[0]);
    assert!(files().iter().all(|f| f.starts_with(&format!("0000000001.{first}."))), "{:?}", files());

    // On the first node, the plugin goes and version 1 of the same name comes back as other code.
    assert_eq!(nodes[0].call(Method::DELETE, "/v1/plugins/verdict", &key, None).0, 204);
    assert_eq!(nodes[0].upload(&key, "verdict", "condition", &guests().zscore_anomaly).0, 201);
    let changed = Instant::now();
    // The new code (a z-score condition) refuses the old code's config, and says what it takes.
    wait_until("the other node runs the new code", || {
        let (status, body) = nodes[1].invoke(&key, "verdict", input.clone());
        status == 422 && body["error"]["message"].as_str().is_some_and(|m| m.contains("expected `threshold`"))
    });
    assert!(changed.elapsed() < Duration::from_secs(1), "in force after {:?}", changed.elapsed());
    let second = sha(&nodes[1]);
    assert_ne!(first, second);
    wait_until("the old code's artifacts are gone", || files().iter().all(|f| f.contains(&second)));
}
