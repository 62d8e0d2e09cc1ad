//! Untrusted plugins: every misbehaviour is an error for that call, named by the limit it hit,
//! and neither the host nor another tenant notices.

use std::sync::Arc;

use klaxon::clock::SystemClock;
use klaxon::plugins::io::Evaluation;
use klaxon::plugins::{CallEnv, CompileCache, Engine, PluginError, PluginKind, Tier};
use klaxon::store::Store;
use klaxon::tenants::PluginLimits;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN, Server, evaluation, guests};

fn behaviour(behaviour: Value) -> Value {
    evaluation(json!({ "behaviour": behaviour }))
}

/// A well-behaved tenant whose plugin must keep answering.
fn bystander(server: &Server) -> impl Fn() {
    let (_, key) = server.tenant("bystander");
    assert_eq!(server.upload(&key, "wow", "condition", &guests().week_over_week_drop).0, 201);
    let server_base = server.base.clone();
    let check = move || {
        let mut input = evaluation(json!({ "drop_percent": 20 }));
        input["value"] = json!({ "current": 50, "previous": 100 });
        let response = reqwest::blocking::Client::new()
            .post(format!("{server_base}/v1/plugins/wow/invoke"))
            .bearer_auth(&key)
            .json(&input)
            .send()
            .expect("the host still answers");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().unwrap();
        assert_eq!(body["output"]["fire"], true);
    };
    check();
    check
}

#[test]
fn each_hostile_plugin_hits_its_limit_and_nothing_else_notices() {
    let server = Server::start();
    let check_bystander = bystander(&server);
    let (tenant, key) = server.tenant("mallory");
    // Time is plentiful, so each case stops at its own limit even on a machine busy with other
    // tests (a memory bomb on a loaded machine could otherwise run into the default 100 ms first).
    server.plentiful_time(&tenant);
    assert_eq!(server.upload(&key, "hostile", "condition", &guests().hostile).0, 201);

    let cases = [
        (json!("infinite-loop"), "plugin_fuel_exhausted", Some("fuel")),
        (json!("memory-bomb"), "plugin_memory_exceeded", Some("memory_bytes")),
        (json!("stack-overflow"), "plugin_stack_overflow", Some("stack")),
        (json!({ "huge-output": { "bytes": 1_000_000 } }), "plugin_output_too_large", Some("output_bytes")),
        (json!("trap"), "plugin_trapped", None),
    ];
    for (behaviour_config, code, limit) in cases {
        let (status, body) = server.invoke(&key, "hostile", behaviour(behaviour_config.clone()));
        assert_eq!(status, 422, "{behaviour_config}: {body}");
        assert_eq!(body["error"]["code"], code, "{behaviour_config}: {body}");
        assert_eq!(body["error"]["limit"].as_str(), limit, "{behaviour_config}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        check_bystander();
        assert_eq!(server.request(Method::GET, "/healthz", None).send().unwrap().status(), 200);
    }

    // A trap carries the panic message in the plugin's log.
    let (_, body) = server.invoke(&key, "hostile", behaviour(json!("trap")));
    let logs = body["logs"].to_string();
    assert!(logs.contains("deliberate trap"), "{body}");

    // The same plugin still works when it behaves.
    let (status, body) = server.invoke(&key, "hostile", behaviour(json!("behave")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["logs"], json!([{ "level": "info", "message": "behaving" }]));

    // An oversized input is refused before the plugin runs.
    server.call(Method::PATCH, "/v1/plugins/hostile", &key, Some(json!({ "limits": { "input_bytes": 64 } })));
    let mut big = behaviour(json!("behave"));
    big["config"]["padding"] = json!("x".repeat(100));
    let (status, body) = server.invoke(&key, "hostile", big);
    assert_eq!((status, body["error"]["limit"].as_str()), (422, Some("input_bytes")), "{body}");
    assert_eq!(body["fuel_used"], 0);

    // Each call is counted under the plugin, by outcome, with its time and fuel.
    let series = format!("tenant=\"{tenant}\",plugin=\"hostile\"");
    let calls = |outcome: &str| {
        server.metric(&format!("klaxon_plugin_calls_total{{{series},function=\"evaluate\",outcome=\"{outcome}\"}}"))
    };
    assert_eq!(calls("plugin_fuel_exhausted"), 1.0);
    assert_eq!(calls("plugin_trapped"), 2.0);
    assert_eq!(calls("ok"), 1.0);
    assert_eq!(calls("plugin_input_too_large"), 1.0);
    assert_eq!(server.metric(&format!("klaxon_plugin_call_duration_seconds_count{{{series}}}")), 8.0);
    assert_eq!(server.metric(&format!("klaxon_plugin_fuel_used_bucket{{{series},le=\"+Inf\"}}")), 8.0);
    assert!(server.metric(&format!("klaxon_plugin_fuel_used_sum{{{series}}}")) >= 50_000_000.0, "the loop's fuel");
    // A removed plugin's series go with it.
    assert_eq!(server.call(Method::DELETE, "/v1/plugins/hostile", &key, None).0, 204);
    assert_eq!(server.metric(&format!("klaxon_plugin_call_duration_seconds_count{{{series}}}")), 0.0);
}

/// What a hostile call's error must be.
type Expected = fn(&PluginError) -> bool;

/// Every limit holds in the code of either compiler tier: the baseline code that serves a plugin
/// right after its upload (or a restart that caught it before it was optimized), and the
/// optimized code that replaces it. Driven through the engine, since over HTTP which tier answers
/// depends on how far the optimizer has come.
#[test]
fn each_limit_holds_at_both_compiler_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 20).unwrap();
    let engine = Engine::new(CompileCache::open(store.compiled_functions(), 1 << 30), 0).unwrap();
    let limits = PluginLimits {
        fuel: 50_000_000,
        time_ms: 5_000,
        memory_bytes: 32 << 20,
        input_bytes: 1 << 18,
        output_bytes: 1 << 18,
    };
    let endless = PluginLimits { fuel: 1_000_000_000_000, time_ms: 200, ..limits };
    let cases: [(Value, PluginLimits, Expected); 6] = [
        (json!("infinite-loop"), limits, |e| matches!(e, PluginError::FuelExhausted(50_000_000))),
        (json!("infinite-loop"), endless, |e| matches!(e, PluginError::Timeout(200))),
        (json!("memory-bomb"), limits, |e| matches!(e, PluginError::MemoryExceeded(_))),
        (json!("stack-overflow"), limits, |e| matches!(e, PluginError::StackOverflow)),
        (json!({ "huge-output": { "bytes": 1_000_000 } }), limits, |e| matches!(e, PluginError::OutputTooLarge { .. })),
        (json!("trap"), limits, |e| matches!(e, PluginError::Trapped(_))),
    ];
    for tier in Tier::ALL {
        let prepared = engine.compile(tier, PluginKind::Condition, &guests().hostile).unwrap().prepared;
        assert_eq!(prepared.tier(), tier);
        let call = |config: &Value, limits: PluginLimits| {
            let input: Evaluation = serde_json::from_value(behaviour(config.clone())).unwrap();
            let kv = store.plugin_kv("mallory", "hostile", "*");
            engine.evaluate(&prepared, CallEnv { limits, kv, clock: Arc::new(SystemClock) }, &input)
        };
        for (config, limits, expected) in &cases {
            let report = call(config, *limits);
            let error = report.result.expect_err("a hostile call fails");
            assert!(expected(&error), "{} code, {config}: {error}", tier.as_str());
        }
        let report = call(&json!("behave"), limits);
        assert!(report.result.is_ok(), "{} code: {:?}", tier.as_str(), report.result);
    }
}

#[test]
fn an_endless_loop_is_stopped_by_the_clock_when_fuel_is_plentiful() {
    let server = Server::start();
    let check_bystander = bystander(&server);
    let (tenant, key) = server.tenant("mallory");
    let limits = json!({ "fuel": 1_000_000_000_000u64, "time_ms": 200, "memory_bytes": 16777216, "input_bytes": 65536, "output_bytes": 65536 });
    server.plugin_limits(&tenant, limits);
    assert_eq!(server.upload(&key, "hostile", "condition", &guests().hostile).0, 201);

    // Twice as many endless loops as the tenant has call slots (one per core), while the
    // bystander keeps being served. The second half waits for the first: at least two rounds.
    let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = std::time::Instant::now();
    let loops: Vec<_> = (0..2 * slots)
        .map(|_| {
            let (base, key) = (server.base.clone(), key.clone());
            std::thread::spawn(move || {
                let response = reqwest::blocking::Client::new()
                    .post(format!("{base}/v1/plugins/hostile/invoke"))
                    .bearer_auth(&key)
                    .json(&behaviour(json!("infinite-loop")))
                    .send()
                    .unwrap();
                (response.status().as_u16(), response.json::<Value>().unwrap())
            })
        })
        .collect();
    for _ in 0..5 {
        check_bystander();
    }
    for handle in loops {
        let (status, body) = handle.join().unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("plugin_timeout")), "{body}");
        assert_eq!(body["error"]["limit"], "time_ms");
        assert!(body["duration_us"].as_u64().unwrap() >= 190_000, "{body}");
    }
    assert!(started.elapsed().as_millis() >= 2 * 190, "a tenant's calls beyond its slots queue");
}

#[test]
fn wasi_components_load_with_no_files_or_environment() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let (status, body) = server.upload(&key, "probe", "condition", &guests().wasi_probe);
    assert_eq!(status, 201, "{body}");
    let imports = body["version"]["imports"].to_string();
    assert!(imports.contains("wasi:cli/stdout"), "{imports}");

    let (status, body) = server.invoke(&key, "probe", evaluation(json!({})));
    assert_eq!(status, 200, "{body}");
    let labels = &body["output"]["labels"];
    assert_eq!((labels["file"].as_str(), labels["env"].as_str()), (Some("false"), Some("0")), "{body}");
    // The guest's wall clock is the server's clock.
    let guest_now: u64 = labels["unix_seconds"].as_str().unwrap().parse().unwrap();
    let test_now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(guest_now.abs_diff(test_now) < 60, "guest {guest_now}, test {test_now}");
    let logs = body["logs"].as_array().unwrap();
    assert!(logs.contains(&json!({ "level": "info", "message": "hello from stdout" })), "{body}");
    assert!(logs.contains(&json!({ "level": "error", "message": "hello from stderr" })), "{body}");
}

#[test]
fn a_plugins_log_keeps_real_calls_and_failures_newest_first_and_bounded() {
    let server = Server::start_with(None, &["--manual-clock"]);
    let (_, key) = server.tenant("acme");
    assert_eq!(server.upload(&key, "hostile", "condition", &guests().hostile).0, 201);
    let logs = |query: &str| {
        let (status, body) = server.call(Method::GET, &format!("/v1/plugins/hostile/logs{query}"), &key, None);
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    };
    assert!(logs("").is_empty());

    // A real call: a rule's evaluation in the scheduler, not a dry run.
    let rule = json!({ "name": "behaves", "scope": { "type": "each" },
        "condition": { "kind": "plugin", "plugin": "hostile", "config": { "behaviour": "behave" } } });
    let (status, body) = server.call(Method::POST, "/v1/rules", &key, Some(rule));
    assert_eq!(status, 201, "{body}");
    let now = server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let event = json!({ "id": "e1", "customer_id": "c1", "type": "usage", "timestamp": now, "properties": {} });
    let (status, body) = server.call(Method::POST, "/v1/events", &key, Some(json!({ "events": [event] })));
    assert_eq!(status, 200, "{body}");
    server.call(Method::PUT, "/v1/clock", ADMIN, Some(json!({ "now": now })));
    let real = logs("");
    assert!(
        real.iter().any(|l| l["function"] == "evaluate" && l["message"] == "behaving" && l["source"] == "plugin"),
        "{real:?}"
    );

    // A failed call leaves its error; the newest line comes first; filters by level.
    let (status, _) = server.invoke(&key, "hostile", behaviour(json!("infinite-loop")));
    assert_eq!(status, 422);
    let newest = &logs("?limit=1")[0];
    assert_eq!((&newest["level"], &newest["source"]), (&json!("error"), &json!("klaxon")), "{newest}");
    assert!(newest["message"].as_str().unwrap().starts_with("plugin_fuel_exhausted"), "{newest}");
    assert!(logs("?level=error").iter().all(|l| l["level"] == "error"));
    assert!(logs("?level=info").iter().all(|l| l["level"] == "info"));
    let (status, body) = server.call(Method::GET, "/v1/plugins/hostile/logs?limit=0", &key, None);
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("limit")), "{body}");
    let (status, body) = server.call(Method::GET, "/v1/plugins/hostile/logs?since=yesterday", &key, None);
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("query")), "{body}");

    // Bounded: the oldest go once the plugin has logged its limit.
    for _ in 0..1000 {
        assert_eq!(server.invoke(&key, "hostile", behaviour(json!("behave"))).0, 200);
    }
    let kept = logs("?limit=1000");
    assert_eq!(kept.len(), 1000);
    assert!(kept.iter().all(|l| l["message"] == "behaving"), "the older lines went first");
    let (status, body) = server.call(Method::GET, "/v1/plugins/nope/logs", &key, None);
    assert_eq!(status, 404, "{body}");
}

/// Instances are kept warm between calls, but only for the same tenant, plugin version and scope
/// key: a guest that remembers the last scope key it saw must never report another's.
#[test]
fn a_warm_instance_never_carries_state_across_scope_keys_or_tenants() {
    let server = Server::start();
    let (alice_id, alice) = server.tenant("alice");
    let (_, bob) = server.tenant("bob");
    for key in [&alice, &bob] {
        assert_eq!(server.upload(key, "memory", "condition", &guests().hostile).0, 201);
    }
    let alice_warm = std::cell::Cell::new(0);
    let remember = |key: &str, scope: &str| {
        let mut input = behaviour(json!("remember"));
        input["scope_key"] = json!(scope);
        let (status, body) = server.invoke(key, "memory", input);
        assert_eq!(status, 200, "{body}");
        let labels = &body["output"]["labels"];
        let calls = labels["calls"].as_str().unwrap().parse::<u32>().unwrap();
        assert_eq!(body["warm"], calls > 1, "the answer says whether a warm instance served it: {body}");
        if key == alice && calls > 1 {
            alice_warm.set(alice_warm.get() + 1);
        }
        (labels["previous"].as_str().unwrap().to_string(), calls)
    };

    // The same scope key is served by the same warm instance, which remembers it.
    assert_eq!(remember(&alice, "cus_1"), ("none".into(), 1));
    assert_eq!(remember(&alice, "cus_1"), ("cus_1".into(), 2));
    // Another scope key, and the same scope key of another tenant, never see that memory.
    assert_eq!(remember(&alice, "cus_2"), ("none".into(), 1));
    assert_eq!(remember(&bob, "cus_1"), ("none".into(), 1));
    assert_eq!(remember(&bob, "cus_2"), ("none".into(), 1));
    for _ in 0..3 {
        for (key, scope) in [(&alice, "cus_1"), (&alice, "cus_2"), (&bob, "cus_1")] {
            assert_eq!(remember(key, scope).0, scope, "{scope} only ever sees itself");
        }
    }

    // A call that traps leaves nothing behind: the next call starts a fresh instance.
    let mut trap = behaviour(json!("trap"));
    trap["scope_key"] = json!("cus_1");
    let (status, body) = server.invoke(&alice, "memory", trap);
    assert_eq!((status, &body["warm"]), (422, &json!(true)), "the instance that remembers cus_1 traps: {body}");
    alice_warm.set(alice_warm.get() + 1);
    assert_eq!(remember(&alice, "cus_1"), ("none".into(), 1));

    // A new version starts afresh as well.
    assert_eq!(server.upload(&alice, "memory", "condition", &guests().hostile).0, 201);
    assert_eq!(remember(&alice, "cus_2"), ("none".into(), 1));

    let warm_calls = format!("klaxon_plugin_warm_calls_total{{tenant=\"{alice_id}\",plugin=\"memory\"}}");
    assert_eq!(server.metric(&warm_calls), f64::from(alice_warm.get()));
}

/// Warm instances are kept within a budget of linear memory: none with a budget of 0, and with
/// room for one instance of this plugin (a Rust guest of between 1 and 2 MiB) the least recently used
/// goes when a second scope key's instance is kept.
#[test]
fn warm_instances_are_bounded_by_their_memory() {
    let calls = |server: &Server, key: &str, scope: &str| {
        let mut input = behaviour(json!("remember"));
        input["scope_key"] = json!(scope);
        let (status, body) = server.invoke(key, "memory", input);
        assert_eq!(status, 200, "{body}");
        (body["output"]["labels"]["calls"].as_str().unwrap().parse::<u32>().unwrap(), body["warm"] == true)
    };
    let start = |budget: u64| {
        let server = Server::start_with_config(Some(&format!("warm_instance_bytes = {budget}\n")));
        let (_, key) = server.tenant("acme");
        assert_eq!(server.upload(&key, "memory", "condition", &guests().hostile).0, 201);
        (server, key)
    };

    let (none, key) = start(0);
    assert_eq!(calls(&none, &key, "cus_1"), (1, false));
    assert_eq!(calls(&none, &key, "cus_1"), (1, false), "with a budget of 0 nothing is kept");

    let (one, key) = start(2 << 20);
    assert_eq!(calls(&one, &key, "cus_1"), (1, false));
    assert_eq!(calls(&one, &key, "cus_1"), (2, true), "one instance fits");
    assert_eq!(calls(&one, &key, "cus_2"), (1, false));
    assert_eq!(calls(&one, &key, "cus_1"), (1, false), "cus_2's instance took the room of cus_1's");
    assert_eq!(calls(&one, &key, "cus_1"), (2, true));
}
