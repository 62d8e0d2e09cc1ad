//! The console's pages beyond rules, channels and notifications, driven in headless Chromium:
//! plugins, API keys, tenants, customers and cohorts, silences, incidents and subscriptions.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::support::{ADMIN, Server, guests};

#[test]
fn a_plugin_uploaded_in_the_browser_is_versioned_pinned_limited_and_invoked() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("drop.wasm"), dir.path().join("zscore.wasm"));
    std::fs::write(&first, &guests().week_over_week_drop).unwrap();
    std::fs::write(&second, &guests().zscore_anomaly).unwrap();

    let browser = Browser::start();
    browser.open(&format!("{}/#/plugins", server.base));
    browser.sign_in(&key);
    browser.wait_for_text("h1", "Plugins");
    browser.fill("name", "drop");
    browser.click("#upload-plugin");
    browser.wait_for_text("[data-error-for=\"component\"]", "choose a component");
    browser.attach("component", &first);
    browser.click("#upload-plugin");
    browser.wait_for_text("h1", "drop");
    browser.wait_for_text("#plugin-status", "version 1 in use (the latest)");

    browser.attach("component", &second);
    browser.click("#upload-version");
    browser.wait_for_text("#plugin-status", "version 2 in use (the latest)");
    browser.click("[data-pin=\"1\"]");
    browser.wait_for_text("#plugin-status", "version 1 in use (pinned)");
    let (_, plugin) = server.call(Method::GET, "/v1/plugins/drop", &key, None);
    assert_eq!((plugin["pinned_version"].clone(), plugin["active_version"].clone()), (json!(1), json!(1)));

    // Limits: a typing slip is caught at the field, a limit above the tenant's is refused there
    // by the server, and a good one is saved.
    browser.fill("limits.fuel", "lots");
    browser.click("#save-limits");
    browser.wait_for_text("[data-error-for=\"limits.fuel\"]", "whole number");
    browser.fill("limits.fuel", "999999999999999");
    browser.click("#save-limits");
    browser.wait_for_text("[data-error-for=\"limits.fuel\"]", "above the tenant's limit");
    browser.fill("limits.fuel", "2000000");
    browser.click("#save-limits");
    browser.wait_gone("[aria-invalid=\"true\"]");
    browser.wait_for_text("#plugin-status", "version 1");
    browser.wait_for_text("#config-schema", "drop_percent");
    let (_, plugin) = server.call(Method::GET, "/v1/plugins/drop", &key, None);
    assert_eq!(plugin["limits"]["fuel"], 2_000_000, "{plugin}");
    assert_eq!(plugin["effective_limits"]["fuel"], 2_000_000, "{plugin}");

    // Invoke: the plugin's own validation error, then an evaluation with its output and cost.
    browser.choose("function", "validate");
    browser.fill("input", r#"{"function": "validate", "config": {"drop_percent": 500}}"#);
    browser.click("#invoke-button");
    browser.wait_for_text("#invoke-result", "drop_percent must be above 0 and at most 100");
    browser.wait_for_text("#invoke-figures", "Failed");
    browser.fill("input", "{not json");
    browser.click("#invoke-button");
    browser.wait_for_text("[data-error-for=\"input\"]", "not JSON");
    browser.choose("function", "evaluate");
    let evaluation = json!({ "rule": { "id": "rul_1", "name": "usage drop" }, "value": { "current": 50, "previous": 100 },
        "config": { "drop_percent": 20 } });
    browser.fill("input", &evaluation.to_string());
    browser.click("#invoke-button");
    browser.wait_for_text("#invoke-figures", "Succeeded");
    assert!(browser.try_find("[aria-invalid=\"true\"]").is_none(), "the earlier error is cleared");
    let output = browser.wait_for_text("#invoke-output", "\"fire\": true");
    assert!(output.contains("50"), "{output}");
    let figures = browser.find("#invoke-figures").text();
    let fuel: u64 = figures.split(" · ").nth(1).unwrap().trim_end_matches(" fuel").parse().unwrap();
    assert!(fuel > 0, "{figures}");
    browser.screenshot("plugin");

    browser.click("#toggle-enabled");
    browser.wait_for_text("#plugin-status", "disabled");
    browser.wait_for_text("#plugin-log", "drop_percent must be above 0");
    browser.wait_gone("#invoke-button");
    let (_, plugin) = server.call(Method::GET, "/v1/plugins/drop", &key, None);
    assert_eq!(plugin["enabled"], false);
    browser.click("nav a[href=\"#/plugins\"]");
    browser.wait_for_text("table", "drop");
    browser.wait_for_text("table", "1 (pinned)");
}

#[test]
fn the_platform_admin_makes_a_tenant_whose_admin_makes_a_key() {
    let server = Server::start();
    let browser = Browser::start();
    browser.open(&server.base);
    browser.sign_in(ADMIN);
    browser.wait_for_text("h1", "Tenants");
    assert!(browser.try_find("nav a[href=\"#/rules\"]").is_none(), "the platform admin has no tenant pages");
    browser.click("#create-tenant");
    browser.wait_for_text("[data-error-for=\"name\"]", "1 to 200 characters");
    browser.fill("name", "globex");
    browser.click("#create-tenant");
    let token = browser.wait_for_text("#new-tenant-key", "klx_");
    browser.wait_for_text("table", "globex");
    browser.screenshot("tenants");

    browser.click("#sign-out");
    browser.wait_for_text("h1", "Sign in");
    browser.sign_in(&token);
    browser.wait_for_text("#whoami", "globex · admin");
    browser.click("nav a[href=\"#/keys\"]");
    browser.wait_for_text("h1", "API keys");
    browser.fill("name", "dashboards");
    browser.choose("role", "viewer");
    browser.click("#create-key");
    let viewer = browser.wait_for_text("#new-key-token", "klx_");
    browser.wait_for_text("table", "dashboards");
    let (status, _) = server.call(Method::GET, "/v1/rules", &viewer, None);
    assert_eq!(status, 200, "the key made in the browser works");

    browser.click("#sign-out");
    browser.sign_in(&viewer);
    assert!(browser.try_find("nav a[href=\"#/keys\"]").is_none(), "a viewer does not manage keys");

    browser.click("#sign-out");
    browser.sign_in(&token);
    browser.click("nav a[href=\"#/keys\"]");
    browser.click("[data-revoke=\"dashboards\"]");
    browser.accept_dialog();
    browser.wait_gone("[data-revoke=\"dashboards\"]");
    let (status, _) = server.call(Method::GET, "/v1/rules", &viewer, None);
    assert_eq!(status, 401, "the key revoked in the browser no longer works");

    // A role defined in the browser, a key with it, and a console that shows only its pages.
    browser.click("nav a[href=\"#/roles\"]");
    browser.wait_for_text("table", "built in");
    browser.fill("name", "support-engineer");
    let permissions = "subscriptions:read subscriptions:create subscriptions:update:own silences:read channels:read";
    browser.fill("permissions", permissions);
    browser.click("#create-role");
    browser.wait_for_text("table", "subscriptions:update:own");
    browser.click("nav a[href=\"#/keys\"]");
    // The Roles page has a `name` field too: fill the keys page's once it is shown.
    browser.wait_for_text("h1", "API keys");
    browser.fill("name", "ada");
    browser.choose("role", "support-engineer");
    browser.click("#create-key");
    let support = browser.wait_for_text("#new-key-token", "klx_");
    browser.click("#sign-out");
    browser.sign_in(&support);
    browser.wait_for_text("#whoami", "globex · support-engineer");
    let nav = browser.script("return [...document.querySelectorAll('#nav a')].map((a) => a.textContent)");
    assert_eq!(nav, serde_json::json!(["Channels", "Subscriptions", "Silences"]), "only the pages it may read");
    browser.click("nav a[href=\"#/subscriptions\"]");
    browser.wait_for_text("h1", "Subscriptions");
    browser.find("a[href=\"#/subscriptions/new\"]");
    // Without categories:read and recipients:read the page still opens, and says what it lacks.
    browser.wait_for_text("#unreadable", "may not read categories or recipients");
    browser.click("nav a[href=\"#/silences\"]");
    browser.wait_for_text("h1", "Silences");
    assert!(!browser.find("main").text().contains("New silence"), "no silences:create, no form");
}

#[test]
fn customers_cohorts_silences_incidents_and_subscriptions_in_the_browser() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let call = |method: Method, path: &str, body: serde_json::Value| {
        let (status, answer) = server.call(method, path, &key, Some(body));
        assert!((200..300).contains(&status), "{path}: {answer}");
        answer
    };
    call(Method::PUT, "/v1/customers/cus_9", json!({ "name": "Initech", "fields": { "plan": "pro", "seats": 120 } }));
    let now = server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let event = json!({ "id": "e1", "customer_id": "cus_9", "type": "login", "timestamp": now, "properties": {} });
    let accepted = call(Method::POST, "/v1/events", json!({ "events": [event] }));
    assert_eq!(accepted["accepted"], 1, "{accepted}");
    let cohort = call(
        Method::POST,
        "/v1/cohorts",
        json!({ "name": "Pro customers",
        "filters": [{ "field": "customer.plan", "op": "=", "value": "pro" }] }),
    );
    let cohort_path = format!("/v1/cohorts/{}", cohort["id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.call(Method::GET, &cohort_path, &key, None).1["status"] != "ready" {
        assert!(std::time::Instant::now() < deadline, "the cohort was not computed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    call(
        Method::POST,
        "/v1/recipients",
        json!({ "name": "Ana", "email": "ana@example.com", "groups": ["Billing Admins"] }),
    );
    let channel = call(
        Method::POST,
        "/v1/channels",
        json!({ "name": "billing hook", "kind": "webhook",
        "url": "https://hooks.example.com/billing" }),
    );

    let browser = Browser::start();
    browser.open(&format!("{}/#/customers", server.base));
    browser.sign_in(&key);
    browser.wait_for_text("table", "cus_9");
    browser.click("table a");
    browser.wait_for_text("h1", "Initech (cus_9)");
    browser.wait_for_text("main", "seats");
    browser.wait_for_text("main", "login");
    browser.wait_for_text("#memberships", "Pro customers");
    browser.screenshot("customer");
    browser.click("#memberships a");
    browser.wait_for_text("#cohort-status", "1 members");
    browser.wait_for_text("table", "cus_9");

    // A silence: an unknown matcher field is refused at its row, then one is made.
    browser.click("nav a[href=\"#/silences\"]");
    browser.wait_for_text("h1", "Silences");
    browser.fill("matchers[0].field", "bogus");
    browser.fill("matchers[0].value", "nightly batch");
    browser.set_value("ends_at", "2099-01-01T10:00");
    browser.fill("comment", "planned import");
    browser.click("#create-silence");
    browser.wait_for_text("[data-error-for=\"matchers[0]\"]", "must read `rule.id`");
    browser.fill("matchers[0].field", "rule.name");
    browser.click("#create-silence");
    browser.wait_for_text("table", "rule.name = \"nightly batch\"");
    browser.wait_for_text("table", "active");
    browser.click("table button");
    browser.wait_for_text("table", "expired");

    // An incident: opened, then moved on with a message; its timeline shows both.
    browser.click("nav a[href=\"#/incidents\"]");
    browser.wait_for_text("h1", "Incidents");
    browser.fill("title", "Invoices delayed");
    browser.choose("category", "billing");
    browser.fill("message", "Looking into it");
    browser.click("main form button[type=submit]");
    browser.wait_for_text("#incident-status", "investigating");
    browser.choose("status", "identified");
    browser.fill("message", "A stuck queue");
    browser.click("#post-update");
    browser.wait_for_text("#incident-status", "identified");
    browser.wait_for_text("#timeline", "investigating → identified");
    browser.wait_for_text("#timeline", "A stuck queue");
    browser.screenshot("incident");

    // A subscription made on the category × channel grid shows in the matrix.
    browser.click("nav a[href=\"#/subscriptions\"]");
    browser.wait_for_text("h1", "Subscriptions");
    browser.click("main a.button");
    browser.wait_for_text("h1", "New subscription");
    browser.fill("name", "Billing on call");
    browser.choose("group", "group:Billing Admins");
    browser.click("input[aria-label=\"billing to billing hook\"]");
    browser.click("#save-subscription");
    browser.wait_for_text("#matrix", "Billing on call");
    let matrix = browser.wait_for_text("#matrix", "billing hook");
    assert!(matrix.contains("group Billing Admins"), "{matrix}");
    let (_, subscriptions) = server.call(Method::GET, "/v1/subscriptions", &key, None);
    assert_eq!(subscriptions["items"][0]["channels"], json!({ "billing": [channel["id"]] }), "{subscriptions}");
    browser.screenshot("subscriptions");
}

#[test]
fn event_match_and_plugin_rules_are_made_and_edited_in_the_browser() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let (status, body) = server.upload(&key, "drop", "condition", &guests().week_over_week_drop);
    assert_eq!(status, 201, "{body}");

    let browser = Browser::start();
    browser.open(&format!("{}/#/rules/new", server.base));
    browser.sign_in(&key);
    browser.wait_for_text("h1", "New rule");
    browser.fill("name", "Big accounts moving");
    browser.choose("condition.kind", "event_match");
    assert!(!browser.find("[data-field=\"condition.metric.event_types\"]").displayed(), "an event match has no metric");
    browser.fill("condition.matches[0].event_type", "signup");
    browser.click("[data-field=\"condition.matches[0].filters\"] .add-filter");
    browser.fill("condition.matches[0].filters[0].field", "seats");
    browser.choose("condition.matches[0].filters[0].op", ">");
    browser.fill("condition.matches[0].filters[0].value", "99");
    browser.click("#add-pattern");
    browser.fill("condition.matches[1].event_type", "upgrade");
    browser.click("[data-field=\"condition.matches[1].filters\"] .add-filter");
    browser.fill("condition.matches[1].filters[0].field", "event.plan");
    browser.choose("condition.matches[1].filters[0].op", "in");
    browser.fill("condition.matches[1].filters[0].value", "pro, enterprise");
    browser.click("main form > button[type=submit]");
    // The server names the filter's field; the error shows on its row.
    browser.wait_for_text("[data-error-for=\"condition.matches[0].filters[0]\"]", "event.");
    browser.fill("condition.matches[0].filters[0].field", "customer.seats");
    browser.screenshot("event-match-rule");
    browser.click("main form > button[type=submit]");
    browser.wait_for_text("h1", "Big accounts moving");
    let id = browser.url().rsplit('/').next().unwrap().to_string();
    let (_, rule) = server.call(Method::GET, &format!("/v1/rules/{id}"), &key, None);
    assert_eq!(
        rule["condition"],
        json!({ "kind": "event_match", "matches": [
            { "event_type": "signup", "filters": [{ "field": "customer.seats", "op": ">", "value": 99 }] },
            { "event_type": "upgrade", "filters": [{ "field": "event.plan", "op": "in", "value": ["pro", "enterprise"] }] },
        ] }),
        "{rule}"
    );

    // Editing keeps what the form shows and changes what was changed.
    browser.click("#edit-rule");
    browser.wait_for_text("h1", "Edit Big accounts moving");
    browser.fill("name", "Big accounts");
    browser.choose("severity", "critical");
    browser.click("main form > button[type=submit]");
    // The rule's page is back (the form's own heading also names the rule).
    browser.find("#edit-rule");
    browser.wait_for_text("h1", "Big accounts");
    let (_, edited) = server.call(Method::GET, &format!("/v1/rules/{id}"), &key, None);
    assert_eq!((&edited["name"], &edited["severity"]), (&json!("Big accounts"), &json!("critical")));
    assert_eq!(edited["condition"], rule["condition"], "the condition survived the edit");

    // A plugin condition's config is checked by the plugin, and its refusal shows at the config.
    browser.open(&format!("{}/#/rules/new", server.base));
    browser.wait_for_text("h1", "New rule");
    browser.fill("name", "Usage drop");
    browser.choose("condition.kind", "plugin");
    browser.fill("condition.config", r#"{"drop_percent": 500}"#);
    browser.click("main form > button[type=submit]");
    browser.wait_for_text("[data-error-for=\"condition.config\"]", "drop_percent must be above 0 and at most 100");
    // The plugin publishes its config's schema: the form has a control for each property, and
    // the control writes its key into the config's JSON.
    browser.wait_for_text("#config-form", "drop_percent");
    browser.fill("condition.config.drop_percent", "20");
    let config = browser.script("return document.querySelector('[data-field=\"condition.config\"]').value");
    assert_eq!(serde_json::from_str::<Value>(config.as_str().unwrap()).unwrap(), json!({ "drop_percent": 20 }));
    browser.fill("condition.metric.event_types", "usage");
    browser.click("main form > button[type=submit]");
    browser.wait_for_text("h1", "Usage drop");
    let (_, rules) = server.call(Method::GET, "/v1/rules", &key, None);
    let saved = rules["items"].as_array().unwrap().iter().find(|r| r["name"] == "Usage drop").unwrap().clone();
    assert_eq!(saved["condition"]["config"], json!({ "drop_percent": 20 }), "{saved}");
    browser.click("nav a[href=\"#/rules\"]");
    browser.wait_for_text("table", "event_match");
    browser.wait_for_text("table", "plugin");
    browser.screenshot("rules");
}

#[test]
fn sms_channels_and_alarm_timing_are_made_and_edited_in_the_browser() {
    let server = Server::start_with_config(Some(crate::delivery::LOOPBACK_ALLOWED));
    let (_, key) = server.tenant("acme");
    let browser = Browser::start();
    browser.open(&format!("{}/#/channels/new", server.base));
    browser.sign_in(&key);
    browser.wait_for_text("h1", "New channel");
    browser.fill("name", "Billing texts");
    browser.choose("kind", "sms");
    assert!(!browser.find("[data-field=\"url\"]").displayed(), "an SMS channel has no URL");
    browser.fill("to", "+4930123456");
    browser.fill("sms.account_sid", "AC0123");
    browser.fill("sms.auth_token", "secret-token");
    browser.fill("sms.from", "+15005550006");
    browser.fill("sms.base_url", "http://127.0.0.1:9");
    browser.click("main form > button[type=submit]");
    browser.wait_for_text("h1", "Billing texts");
    let id = browser.url().rsplit('/').next().unwrap().to_string();
    let (_, channel) = server.call(Method::GET, &format!("/v1/channels/{id}"), &key, None);
    assert_eq!(channel["to"], json!(["+4930123456"]), "{channel}");
    assert_eq!(
        channel["sms"],
        json!({ "base_url": "http://127.0.0.1:9", "account_sid": "AC0123", "from": "+15005550006" })
    );
    assert_eq!(channel["auth_token"], "secret-token");
    browser.click("#preview-button");
    browser.wait_for_text("#segments", "SMS segment(s)");
    // Editing without typing the token keeps it.
    browser.click("#edit-channel");
    browser.wait_for_text("h1", "Edit Billing texts");
    browser.fill("to", "+4930123456, +4940654321");
    browser.click("main form > button[type=submit]");
    browser.find("#edit-channel");
    browser.wait_for_text("h1", "Billing texts");
    let (_, channel) = server.call(Method::GET, &format!("/v1/channels/{id}"), &key, None);
    assert_eq!((channel["to"].as_array().unwrap().len(), &channel["auth_token"]), (2, &json!("secret-token")));

    browser.open(&format!("{}/#/rules/new", server.base));
    browser.wait_for_text("h1", "New rule");
    browser.fill("name", "Busy and steady");
    browser.fill("condition.metric.event_types", "usage");
    browser.fill("condition.value", "10");
    browser.fill("for", "10m");
    browser.fill("keep_firing_for", "15m");
    browser.fill("flapping.changes", "4");
    browser.fill("flapping.within", "2h");
    browser.click("main form > button[type=submit]");
    browser.wait_for_text("h1", "Busy and steady");
    browser.wait_for_text("#state-counts", "0 pending");
    let rule_id = browser.url().rsplit('/').next().unwrap().to_string();
    let (_, rule) = server.call(Method::GET, &format!("/v1/rules/{rule_id}"), &key, None);
    assert_eq!(
        (&rule["for"], &rule["keep_firing_for"], &rule["flapping"]),
        (&json!("10m"), &json!("15m"), &json!({ "changes": 4, "within": "2h" })),
        "{rule}"
    );
    browser.click("#edit-rule");
    browser.wait_for_text("h1", "Edit Busy and steady");
    let shown = browser.script("return document.querySelector('[data-field=\"for\"]').value");
    assert_eq!(shown, "10m");
    browser.set_value("for", "");
    browser.click("main form > button[type=submit]");
    browser.find("#edit-rule");
    browser.wait_for_text("h1", "Busy and steady");
    let (_, rule) = server.call(Method::GET, &format!("/v1/rules/{rule_id}"), &key, None);
    assert_eq!((&rule["for"], &rule["keep_firing_for"]), (&Value::Null, &json!("15m")), "{rule}");
}

#[test]
fn a_status_page_an_internal_incident_and_an_anomaly_rule_are_made_in_the_browser() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let browser = Browser::start();
    browser.open(&format!("{}/#/incidents", server.base));
    browser.sign_in(&key);
    browser.wait_for_text("#status-page-form", "Save status page");
    browser.fill_in("#status-page-form", "slug", "acme-status");
    browser.fill_in("#status-page-form", "title", "Acme status");
    browser.fill_in("#status-page-form", "components", "Core / API\nBilling");
    browser.click("#save-status-page");
    browser.wait_for_text("#status-page-link", "/status/acme-status");
    let (_, page) = server.call(Method::GET, "/v1/status-page", &key, None);
    assert_eq!(
        (&page["enabled"], &page["history_days"], &page["components"]),
        (&json!(true), &json!(90), &json!([{ "name": "API", "group": "Core" }, { "name": "Billing" }])),
        "{page}"
    );

    // A billing incident kept off the page.
    browser.fill("title", "Checkout down");
    browser.choose("category", "billing");
    browser.choose("public", "false");
    browser.fill("components", "API");
    browser.click("main form > button[type=submit]");
    browser.wait_for_text("h1", "Checkout down");
    browser.wait_for_text("main p", "internal");
    let (_, incidents) = server.call(Method::GET, "/v1/incidents", &key, None);
    assert_eq!(incidents["items"][0]["public"], false);
    browser.open(&format!("{}/status/acme-status", server.base));
    browser.wait_for_text("h1", "Acme status");
    browser.wait_for_text(".overall", "All systems operational");
    let styled = browser.script("return getComputedStyle(document.querySelector('.overall')).color");
    assert_eq!(styled, "rgb(255, 255, 255)", "the page's stylesheet loads under the CSP");

    browser.open(&format!("{}/#/rules/new", server.base));
    browser.wait_for_text("h1", "New rule");
    browser.fill("name", "Fewer signups than usual");
    browser.choose("condition.kind", "anomaly");
    assert!(
        !browser.find("[data-field=\"condition.window\"]").displayed(),
        "an anomaly rule has buckets, not a window"
    );
    browser.fill("condition.metric.event_types", "signup");
    browser.choose("condition.bucket", "1d");
    browser.choose("condition.seasonality", "weekly");
    browser.fill("condition.history", "6");
    browser.fill("condition.min_history", "3");
    browser.choose("condition.direction", "down");
    browser.click("main form > button[type=submit]");
    browser.wait_for_text("h1", "Fewer signups than usual");
    let rule_id = browser.url().rsplit('/').next().unwrap().to_string();
    let (_, rule) = server.call(Method::GET, &format!("/v1/rules/{rule_id}"), &key, None);
    assert_eq!(
        rule["condition"],
        json!({ "kind": "anomaly", "metric": { "event_types": ["signup"], "filters": [], "aggregate": "count",
                "property": null }, "bucket": "1d", "seasonality": "weekly", "history": 6, "sensitivity": 3.0,
                "direction": "down", "min_history": 3 }),
    );
    browser.click("#edit-rule");
    browser.wait_for_text("h1", "Edit Fewer signups than usual");
    let shown = browser.script("return document.querySelector('[data-field=\"condition.history\"]').value");
    assert_eq!(shown, "6");

    // A forecast: its errors land beside its own controls, not the anomaly's of the same name.
    browser.open(&format!("{}/#/rules/new", server.base));
    browser.wait_for_text("h1", "New rule");
    browser.fill("name", "Credits run out before renewal");
    browser.choose("condition.kind", "forecast");
    browser.fill("condition.metric.event_types", "usage");
    browser.choose("condition.metric.aggregate", "sum");
    browser.fill("condition.metric.property", "credits");
    browser.choose("condition.window", "calendar:month");
    browser.fill("condition.value", "1000");
    browser.choose("condition.before", "field");
    browser.fill("condition.before.field", "contract_end");
    browser.choose("condition.method", "holt");
    browser.fill_in("[data-kinds=forecast]", "condition.min_history", "200d");
    browser.click("main form > button[type=submit]");
    browser.wait_for_text("[data-kinds=forecast] [data-error-for=\"condition.min_history\"]", "lookback");
    browser.fill_in("[data-kinds=forecast]", "condition.min_history", "2d");
    browser.click("main form > button[type=submit]");
    browser.wait_for_text("h1", "Credits run out before renewal");
    let rule_id = browser.url().rsplit('/').next().unwrap().to_string();
    let (_, rule) = server.call(Method::GET, &format!("/v1/rules/{rule_id}"), &key, None);
    assert_eq!(
        rule["condition"],
        json!({ "kind": "forecast", "metric": { "event_types": ["usage"], "filters": [], "aggregate": "sum",
                "property": "credits" }, "window": { "calendar": "month" }, "method": "holt", "lookback": "7d",
                "min_history": "2d", "value": 1000.0, "before": { "field": "contract_end" } }),
    );
}
