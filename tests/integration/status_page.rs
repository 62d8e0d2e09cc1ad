//! The public status page: set up over `/v1/status-page`, served without authentication as
//! HTML, JSON and an Atom feed, showing only public incidents and maintenances.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::support::read;

const PAGE: &str = "/status/acme-cloud";

fn page_spec() -> Value {
    json!({ "enabled": true, "slug": "acme-cloud", "title": "Acme Cloud",
            "components": [{ "name": "API", "group": "Core" }, { "name": "Dashboard", "group": "Core" },
                           { "name": "Billing" }] })
}

/// A public route, with no key: its status, content type and body.
fn visit(s: &Setup, path: &str) -> (u16, String, String) {
    let response = s.server.request(Method::GET, path, None).send().unwrap();
    let status = response.status().as_u16();
    let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, kind, response.text().unwrap())
}

fn data(s: &Setup) -> Value {
    let (status, kind, body) = visit(s, &format!("{PAGE}.json"));
    assert_eq!((status, kind.as_str()), (200, "application/json"), "{body}");
    serde_json::from_str(&body).unwrap()
}

fn component<'a>(page: &'a Value, name: &str) -> &'a Value {
    page["components"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()
}

/// Waits until the page's data satisfies `wanted` (the scheduler moves maintenances on).
fn wait_for(s: &Setup, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = data(s);
        if wanted(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "the page never became as wanted: {page:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn open(s: &Setup, spec: Value) -> Value {
    let (status, incident) = s.server.call(Method::POST, "/v1/incidents", &s.key, Some(spec));
    assert_eq!(status, 201, "{incident}");
    incident
}

fn update(s: &Setup, incident: &Value, status: &str, message: &str) {
    let path = format!("/v1/incidents/{}/updates", incident["id"].as_str().unwrap());
    let (code, body) =
        s.server.call(Method::POST, &path, &s.key, Some(json!({ "status": status, "message": message })));
    assert_eq!(code, 201, "{body}");
}

/// The feed as a real feed parser (PyPI `feedparser`, installed by `.ci/run`) reads it: the
/// parser's verdict on its well-formedness, the feed's title and each entry's title and id.
fn parse_feed(atom: &str) -> Value {
    let script = r#"
import json, sys, feedparser
feed = feedparser.parse(sys.stdin.read())
print(json.dumps({
    "bozo": bool(feed.bozo), "version": feed.version, "title": feed.feed.get("title"),
    "id": feed.feed.get("id"), "updated": feed.feed.get("updated"),
    "entries": [{"title": e.get("title"), "id": e.get("id"), "updated": e.get("updated"),
                 "summary": e.get("summary"), "link": e.get("link")} for e in feed.entries],
}))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(atom.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "feedparser failed (pip install feedparser)");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_status_page_follows_an_incident_and_a_maintenance_through_their_lifecycles() {
    let s = Setup::start("");
    let (status, saved) = s.server.call(Method::PUT, "/v1/status-page", &s.key, Some(page_spec()));
    assert_eq!((status, saved["history_days"].as_u64()), (200, Some(90)), "{saved}");
    let (status, kind, html) = visit(&s, PAGE);
    assert_eq!((status, kind.as_str()), (200, "text/html; charset=utf-8"));
    assert!(html.contains("All systems operational"), "{html}");
    assert!(!html.contains("<script"), "the page needs no script");

    // One public incident, and three that must never show: a configuration one, one opened
    // internal, and a category that is internal by default.
    let incident = open(
        &s,
        json!({ "title": "API errors", "category": "infrastructure", "severity": "critical",
                "components": ["API"], "message": "Requests fail with 503." }),
    );
    assert_eq!(incident["public"], true);
    for (title, category, public) in
        [("Webhook secret leaked", "configuration", None), ("Invoice run slow", "billing", Some(false))]
    {
        let mut spec = json!({ "title": title, "category": category });
        if let Some(public) = public {
            spec["public"] = json!(public);
        }
        assert_eq!(open(&s, spec)["public"], false);
    }
    let (status, _) = s.server.call(Method::PUT, "/v1/categories/growth", &s.key, Some(json!({})));
    assert_eq!(status, 201);
    assert_eq!(open(&s, json!({ "title": "Signup funnel dip", "category": "growth" }))["public"], false);

    let page = data(&s);
    assert_eq!((page["status"].as_str(), page["description"].as_str()), (Some("major_outage"), Some("Major outage")));
    assert_eq!(component(&page, "API")["status"], "major_outage");
    assert_eq!(component(&page, "Dashboard")["status"], "operational");
    assert_eq!(component(&page, "API")["group"], "Core");
    let open_incidents = page["incidents"].as_array().unwrap();
    assert_eq!(open_incidents.len(), 1, "{page:#}");
    assert_eq!(open_incidents[0]["updates"][0]["message"], "Requests fail with 503.");
    let days = component(&page, "API")["days"].as_array().unwrap();
    assert_eq!(days.len(), 90);
    assert_eq!(days[89], json!({ "date": "2030-01-07", "status": "major_outage" }));
    assert_eq!(days[88]["status"], "operational");

    for (status, message) in
        [("identified", "A bad deploy."), ("monitoring", "Rolled back; watching."), ("resolved", "All clear.")]
    {
        s.clock(&s.at("PT10M"));
        update(&s, &incident, status, message);
    }
    let page = data(&s);
    assert_eq!(page["status"], "operational");
    assert_eq!(component(&page, "API")["status"], "operational");
    assert_eq!(component(&page, "API")["days"][89]["status"], "major_outage", "today's row remembers the outage");
    let past = page["past_incidents"].as_array().unwrap();
    assert_eq!(past.len(), 1);
    let statuses: Vec<&str> =
        past[0]["updates"].as_array().unwrap().iter().map(|u| u["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["resolved", "monitoring", "identified", "investigating"]);

    // A maintenance of the dashboard: announced, in progress, then over.
    let maintenance = open(
        &s,
        json!({ "kind": "maintenance", "title": "Dashboard upgrade", "category": "infrastructure",
                "components": ["Dashboard"], "starts_at": s.at("PT2H"), "ends_at": s.at("PT4H"),
                "message": "The dashboard is read-only meanwhile." }),
    );
    let page = data(&s);
    assert_eq!(page["maintenance"][0]["title"], "Dashboard upgrade");
    assert_eq!(
        (page["status"].as_str(), component(&page, "Dashboard")["status"].as_str()),
        (Some("operational"), Some("operational"))
    );
    s.clock(&s.at("PT2H"));
    let page = wait_for(&s, |p| component(p, "Dashboard")["status"] == "under_maintenance");
    assert_eq!(page["status"], "under_maintenance");
    let (_, _, html) = visit(&s, PAGE);
    assert!(html.contains("Maintenance in progress") && html.contains("Dashboard upgrade"), "{html}");
    s.clock(&s.at("PT4H"));
    let page = wait_for(&s, |p| p["maintenance"].as_array().unwrap().is_empty());
    assert_eq!(component(&page, "Dashboard")["status"], "operational");
    assert_eq!(component(&page, "Dashboard")["days"][89]["status"], "under_maintenance");
    assert_eq!(page["past_incidents"][0]["id"], maintenance["id"]);

    // Nothing internal leaks: not the hidden incidents, nor any key, rule or tenant id.
    let (_, _, html) = visit(&s, PAGE);
    let (_, _, json_text) = visit(&s, &format!("{PAGE}.json"));
    let (status, kind, atom) = visit(&s, &format!("{PAGE}/feed.atom"));
    assert_eq!((status, kind.as_str()), (200, "application/atom+xml; charset=utf-8"));
    let key_id = incident["created_by"].as_str().unwrap();
    for text in [&html, &json_text, &atom] {
        for secret in ["Webhook secret", "Invoice run", "Signup funnel", key_id, "created_by", "rule"] {
            assert!(!text.contains(secret), "`{secret}` leaked:\n{text}");
        }
    }
    for shown in ["API errors", "A bad deploy.", "Dashboard upgrade", "Core", "Billing"] {
        assert!(html.contains(shown), "the page lacks `{shown}`");
    }

    // The Atom feed: every update of both, newest first, as a feed parser reads it.
    let feed = parse_feed(&atom);
    assert_eq!((feed["bozo"].as_bool(), feed["version"].as_str()), (Some(false), Some("atom10")), "{feed:#}\n{atom}");
    assert_eq!(feed["title"], "Acme Cloud status");
    let titles: Vec<&str> = feed["entries"].as_array().unwrap().iter().map(|e| e["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "Dashboard upgrade: Resolved",
            "Dashboard upgrade: In progress",
            "Dashboard upgrade: Scheduled",
            "API errors: Resolved",
            "API errors: Monitoring",
            "API errors: Identified",
            "API errors: Investigating",
        ]
    );
    let entries = feed["entries"].as_array().unwrap();
    assert_eq!(entries[3]["summary"], "All clear.");
    let mut ids: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7, "each entry has its own id");
    assert!(entries[0]["link"].as_str().unwrap().ends_with(&format!("{PAGE}#{}", maintenance["id"].as_str().unwrap())));
}

#[test]
fn status_pages_refuse_bad_settings_and_hide_when_disabled() {
    let s = Setup::start("");
    for (status, _, _) in [visit(&s, PAGE), visit(&s, &format!("{PAGE}.json")), visit(&s, &format!("{PAGE}/feed.atom"))]
    {
        assert_eq!(status, 404);
    }
    let (status, _) = s.server.call(Method::GET, "/v1/status-page", &s.key, None);
    assert_eq!(status, 404);

    let viewer = s.server.key(&s.key, "viewer");
    let (status, _) = s.server.call(Method::PUT, "/v1/status-page", &viewer, Some(page_spec()));
    assert_eq!(status, 403);
    let with = |name: &str, value: Value| {
        let mut spec = page_spec();
        spec[name] = value;
        spec
    };
    for (spec, field) in [
        (with("slug", json!("Acme Cloud")), "slug"),
        (with("slug", json!("-acme")), "slug"),
        (with("title", json!(" ")), "title"),
        (with("history_days", json!(0)), "history_days"),
        (with("history_days", json!(400)), "history_days"),
        (with("components", json!([{ "name": "API" }, { "name": "API" }])), "components[1].name"),
        (with("components", json!([{ "name": "API", "group": "" }])), "components[0].group"),
    ] {
        let (status, error) = s.server.call(Method::PUT, "/v1/status-page", &s.key, Some(spec));
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some(field)), "{error}");
    }
    let (status, error) = read(
        s.server
            .request(Method::PUT, "/v1/status-page", Some(&s.key))
            .header("content-type", "application/json")
            .body(r#"{"enabled": true, "slug": "acme-cloud", "title": "Acme", "colour": "red"}"#),
    );
    assert_eq!(status, 400, "{error}");
    let (status, error) = s.server.call(
        Method::POST,
        "/v1/incidents",
        &s.key,
        Some(json!({ "title": "Plugin broke", "category": "configuration", "public": true })),
    );
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("public")), "{error}");

    // The slug is unique across tenants; a tenant may keep or change its own.
    let (status, _) = s.server.call(Method::PUT, "/v1/status-page", &s.key, Some(page_spec()));
    assert_eq!(status, 200);
    let (_, other) = s.server.tenant("globex");
    let (status, error) = s.server.call(Method::PUT, "/v1/status-page", &other, Some(page_spec()));
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("slug")), "{error}");
    let (status, _) = s.server.call(Method::PUT, "/v1/status-page", &s.key, Some(with("slug", json!("acme"))));
    assert_eq!(status, 200);
    assert_eq!(visit(&s, PAGE).0, 404, "the old address is freed");
    assert_eq!(visit(&s, "/status/acme").0, 200);
    let (status, _) = s.server.call(Method::PUT, "/v1/status-page", &other, Some(page_spec()));
    assert_eq!(status, 200, "the freed slug can be taken");

    // Disabled: every route of the page is 404; the settings stay.
    let mut disabled = with("slug", json!("acme"));
    disabled["enabled"] = json!(false);
    let (status, _) = s.server.call(Method::PUT, "/v1/status-page", &s.key, Some(disabled));
    assert_eq!(status, 200);
    for path in ["/status/acme", "/status/acme.json", "/status/acme/feed.atom"] {
        assert_eq!(visit(&s, path).0, 404, "{path}");
    }
    let (status, kept) = s.server.call(Method::GET, "/v1/status-page", &viewer, None);
    assert_eq!((status, kept["enabled"].as_bool(), kept["slug"].as_str()), (200, Some(false), Some("acme")));
}
