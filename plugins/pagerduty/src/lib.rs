//! A PagerDuty channel (Events API v2): an alarm triggers an incident, the alert's resolution
//! resolves it. The `dedup_key` is the alert's (rule and scope key), so PagerDuty's incident
//! follows Klaxon's alert, and a retried or repeated delivery never opens a second one.

use klaxon_sdk::{AlertState, Channel, Context, DeliveryOutcome, HttpRequest, HttpResponse, Severity};
use serde::Deserialize;
use serde_json::json;

const EVENTS_API: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The integration's routing key (a secret).
    routing_key: String,
    /// Where the Events API is; PagerDuty's own unless given (a test's receiver, a proxy).
    #[serde(default)]
    url: Option<String>,
}

pub struct PagerDuty;

impl Channel for PagerDuty {
    type Config = Config;

    fn config_schema() -> serde_json::Value {
        json!({
            "type": "object",
            "required": ["routing_key"],
            "additionalProperties": false,
            "properties": {
                "routing_key": { "type": "string", "minLength": 1, "writeOnly": true, "description": "The integration's routing key" },
                "url": { "type": "string", "description": "The Events API's address, when not PagerDuty's own" },
            },
        })
    }

    fn validate(config: &Config) -> Result<(), String> {
        if config.routing_key.trim().is_empty() {
            return Err("routing_key is empty".into());
        }
        Ok(())
    }

    fn requests(config: &Config, context: &Context) -> Result<Vec<HttpRequest>, String> {
        let scope = context.customer.as_ref().map_or("*", |c| c.id.as_str());
        let dedup_key = format!("klaxon/{}/{scope}", context.rule.id);
        let resolved = context.state.current == AlertState::Ok;
        let event = if resolved {
            json!({ "routing_key": config.routing_key, "event_action": "resolve", "dedup_key": dedup_key })
        } else {
            let who = context.customer.as_ref().map(|c| c.name.clone().unwrap_or_else(|| c.id.clone()));
            let summary = match &who {
                Some(who) => format!("{} for {who}", context.rule.name),
                None => context.rule.name.clone(),
            };
            json!({
                "routing_key": config.routing_key,
                "event_action": "trigger",
                "dedup_key": dedup_key,
                "payload": {
                    "summary": summary,
                    "source": format!("klaxon/{}", context.tenant),
                    "severity": severity(context.rule.severity),
                    "custom_details": { "value": context.value, "threshold": context.threshold,
                                        "notification": context.notification.url },
                },
            })
        };
        Ok(vec![HttpRequest::post_json(config.url.as_deref().unwrap_or(EVENTS_API), &event)])
    }

    /// 202 is accepted; 400 is an event PagerDuty will never take; 429 and 5xx are tried again.
    fn classify(_config: &Config, _index: u32, response: &HttpResponse) -> DeliveryOutcome {
        DeliveryOutcome::by_status(response)
    }
}

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

klaxon_sdk::channel!(PagerDuty);
