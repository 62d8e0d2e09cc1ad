//! An Opsgenie channel (Alert API v2): an alarm creates an alert, the alert's resolution closes
//! it. The alert's `alias` is Klaxon's alert (rule and scope key), so a repeated notice adds to
//! the open alert instead of opening another, and the close finds it.

use klaxon_sdk::{AlertState, Channel, Context, DeliveryOutcome, HttpRequest, HttpResponse, Severity};
use serde::Deserialize;
use serde_json::{Value, json};

/// Opsgenie keeps an alert's message to 130 characters and its alias to 512.
const MESSAGE_LIMIT: usize = 130;
const ALIAS_LIMIT: usize = 512;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// An API integration's key (a secret).
    api_key: String,
    /// `us` (the default) or `eu`: which of Opsgenie's sites holds the account.
    #[serde(default)]
    region: Region,
    /// The API's base address, when neither site (a test's receiver, a proxy).
    #[serde(default)]
    url: Option<String>,
    /// Teams the alert is routed to, by name.
    #[serde(default)]
    teams: Vec<String>,
    /// Tags added to every alert.
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    #[default]
    Us,
    Eu,
}

pub struct Opsgenie;

impl Channel for Opsgenie {
    type Config = Config;

    fn config_schema() -> Value {
        json!({
            "type": "object",
            "required": ["api_key"],
            "additionalProperties": false,
            "properties": {
                "api_key": { "type": "string", "minLength": 1, "writeOnly": true, "description": "An API integration's key" },
                "region": { "enum": ["us", "eu"], "default": "us", "description": "The site holding the account" },
                "url": { "type": "string", "description": "The API's base address, when not Opsgenie's own" },
                "teams": { "type": "array", "items": { "type": "string" }, "description": "Teams to route the alert to" },
                "tags": { "type": "array", "items": { "type": "string" }, "description": "Tags on every alert" },
            },
        })
    }

    fn validate(config: &Config) -> Result<(), String> {
        if config.api_key.trim().is_empty() {
            return Err("api_key is empty".into());
        }
        if let Some(team) = config.teams.iter().find(|t| t.trim().is_empty()) {
            return Err(format!("teams holds an empty name ({team:?})"));
        }
        Ok(())
    }

    fn requests(config: &Config, context: &Context) -> Result<Vec<HttpRequest>, String> {
        let alias = alias(context);
        let request = if context.state.current == AlertState::Ok {
            let url = format!("{}/v2/alerts/{}/close?identifierType=alias", config.base(), percent_encode(&alias));
            HttpRequest::post_json(url, &json!({ "source": source(context), "note": "Resolved in Klaxon" }))
        } else {
            let who = context.customer.as_ref().map(|c| c.name.clone().unwrap_or_else(|| c.id.clone()));
            let message = match &who {
                Some(who) => format!("{} for {who}", context.rule.name),
                None => context.rule.name.clone(),
            };
            let mut details = serde_json::Map::new();
            let facts = [("value", context.value), ("threshold", context.threshold)];
            for (name, number) in facts {
                if let Some(number) = number {
                    details.insert(name.into(), number.to_string().into());
                }
            }
            details.insert("notification".into(), context.notification.url.clone().into());
            let mut alert = json!({
                "message": truncate(&message, MESSAGE_LIMIT),
                "alias": alias,
                "description": format!("Klaxon rule {} ({})", context.rule.name, context.notification.url),
                "priority": priority(context.rule.severity),
                "source": source(context),
                "tags": config.tags,
                "details": details,
            });
            if let Some(customer) = &context.customer {
                alert["entity"] = customer.id.clone().into();
            }
            if !config.teams.is_empty() {
                alert["responders"] =
                    config.teams.iter().map(|name| json!({ "type": "team", "name": name })).collect::<Value>();
            }
            HttpRequest::post_json(format!("{}/v2/alerts", config.base()), &alert)
        };
        Ok(vec![request.with_header("authorization", format!("GenieKey {}", config.api_key))])
    }

    /// Opsgenie answers 202 to what it will process; 429 and 5xx are tried again; any other
    /// refusal (a bad key, a bad field) fails with Opsgenie's own message.
    fn classify(_config: &Config, _index: u32, response: &HttpResponse) -> DeliveryOutcome {
        match DeliveryOutcome::by_status(response) {
            DeliveryOutcome::Failed(reason) => {
                let message = serde_json::from_slice::<Value>(&response.body)
                    .ok()
                    .and_then(|body| body["message"].as_str().map(str::to_string));
                DeliveryOutcome::Failed(match message {
                    Some(message) => format!("Opsgenie refused the request ({}): {message}", response.status),
                    None => reason,
                })
            }
            outcome => outcome,
        }
    }
}

impl Config {
    fn base(&self) -> &str {
        let site = match self.region {
            Region::Us => "https://api.opsgenie.com",
            Region::Eu => "https://api.eu.opsgenie.com",
        };
        self.url.as_deref().unwrap_or(site).trim_end_matches('/')
    }
}

/// The alert's stable name: the rule and the customer (or `*` for a rule over all customers).
fn alias(context: &Context) -> String {
    let scope = context.customer.as_ref().map_or("*", |c| c.id.as_str());
    truncate(&format!("klaxon/{}/{scope}", context.rule.id), ALIAS_LIMIT)
}

fn source(context: &Context) -> String {
    format!("klaxon/{}", context.tenant)
}

fn priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "P1",
        Severity::Warning => "P3",
        Severity::Info => "P5",
    }
}

fn truncate(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

/// Encodes everything but unreserved characters, for the alias in the close request's path.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

klaxon_sdk::channel!(Opsgenie);
