//! A Discord channel: a message with one embed through a channel's webhook, red, amber or blue by
//! severity while in alarm and green once resolved. Nothing in it mentions anyone: customer
//! names and rule names are text the tenant does not fully control.

use klaxon_sdk::{AlertState, Channel, Context, DeliveryOutcome, HttpRequest, HttpResponse, Severity};
use serde::Deserialize;
use serde_json::{Value, json};

/// Discord's limits on an embed's title and on a field's value.
const TITLE_LIMIT: usize = 256;
const FIELD_LIMIT: usize = 1024;

const GREEN: u32 = 0x2E_A0_43;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The webhook's address, `https://discord.com/api/webhooks/{id}/{token}` (a secret: the
    /// token is in it).
    webhook_url: String,
    /// The name the message is posted under; the webhook's own when not given.
    #[serde(default)]
    username: Option<String>,
    /// A thread of a forum or text channel to post in.
    #[serde(default)]
    thread_id: Option<String>,
}

pub struct Discord;

impl Channel for Discord {
    type Config = Config;

    fn config_schema() -> Value {
        json!({
            "type": "object",
            "required": ["webhook_url"],
            "additionalProperties": false,
            "properties": {
                "webhook_url": { "type": "string", "writeOnly": true, "description": "The channel webhook's address (it holds the token)" },
                "username": { "type": "string", "maxLength": 80, "description": "The name to post under" },
                "thread_id": { "type": "string", "pattern": "^[0-9]+$", "description": "A thread to post in" },
            },
        })
    }

    fn validate(config: &Config) -> Result<(), String> {
        if !config.webhook_url.starts_with("https://") && !config.webhook_url.starts_with("http://") {
            return Err("webhook_url must be an http(s) address".into());
        }
        if config.username.as_deref().is_some_and(|name| name.is_empty() || name.chars().count() > 80) {
            return Err("username must be 1 to 80 characters".into());
        }
        if config.thread_id.as_deref().is_some_and(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit())) {
            return Err("thread_id must be a Discord id (digits)".into());
        }
        Ok(())
    }

    fn requests(config: &Config, context: &Context) -> Result<Vec<HttpRequest>, String> {
        let resolved = context.state.current == AlertState::Ok;
        let who = context.customer.as_ref().map(|c| c.name.clone().unwrap_or_else(|| c.id.clone()));
        let title = match (&who, resolved) {
            (Some(who), false) => format!("{} for {who}", context.rule.name),
            (Some(who), true) => format!("Resolved: {} for {who}", context.rule.name),
            (None, false) => context.rule.name.clone(),
            (None, true) => format!("Resolved: {}", context.rule.name),
        };
        let mut fields = Vec::new();
        for (name, number) in [("Value", context.value), ("Threshold", context.threshold)] {
            if let Some(number) = number {
                fields.push(json!({ "name": name, "value": number.to_string(), "inline": true }));
            }
        }
        fields.push(json!({ "name": "Severity", "value": severity(context.rule.severity).0, "inline": true }));
        if let Some(customer) = &context.customer {
            fields.push(json!({ "name": "Customer", "value": truncate(&customer.id, FIELD_LIMIT), "inline": true }));
        }
        let colour = if resolved { GREEN } else { severity(context.rule.severity).1 };
        let mut message = json!({
            "embeds": [{
                "title": truncate(&title, TITLE_LIMIT),
                "url": context.notification.url,
                "color": colour,
                "fields": fields,
            }],
            "allowed_mentions": { "parse": [] },
        });
        if let Some(username) = &config.username {
            message["username"] = username.clone().into();
        }
        // `wait=true` has Discord answer once the message exists, so a 200 means it was posted.
        let mut url =
            format!("{}{}wait=true", config.webhook_url, if config.webhook_url.contains('?') { '&' } else { '?' });
        if let Some(thread) = &config.thread_id {
            url.push_str(&format!("&thread_id={thread}"));
        }
        Ok(vec![HttpRequest::post_json(url, &message)])
    }

    /// Discord's rate limit answers 429 with `retry_after` (seconds, with a fraction) in the body
    /// as well as the header; a deleted webhook (404) or a bad token (401) will not come back.
    fn classify(_config: &Config, _index: u32, response: &HttpResponse) -> DeliveryOutcome {
        match response.status {
            429 => {
                let after =
                    serde_json::from_slice::<Value>(&response.body).ok().and_then(|b| b["retry_after"].as_f64());
                match after {
                    Some(seconds) => DeliveryOutcome::Retry(Some(seconds.ceil().max(0.0) as u32)),
                    None => DeliveryOutcome::by_status(response),
                }
            }
            404 => DeliveryOutcome::Failed("Discord says the webhook no longer exists (404)".into()),
            _ => DeliveryOutcome::by_status(response),
        }
    }
}

/// The severity's name and its colour.
fn severity(severity: Severity) -> (&'static str, u32) {
    match severity {
        Severity::Critical => ("critical", 0xD7_3A_49),
        Severity::Warning => ("warning", 0xDB_AB_09),
        Severity::Info => ("info", 0x03_66_D6),
    }
}

fn truncate(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

klaxon_sdk::channel!(Discord);
