//! The console's pages beyond rules, channels and notifications, driven in headless Chromium:
//! plugins, API keys, tenants, customers and cohorts, silences, incidents and subscriptions.

use reqwest::Method;
use serde_json::json;

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
}
