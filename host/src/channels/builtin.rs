//! The built-in payloads (a webhook's JSON envelope, a Slack Block Kit message, a Teams
//! Adaptive Card, email and SMS templates) and the limits Slack and Teams set on any payload.

use serde::Serialize;
use serde_json::{Value, json};

use super::summary::Summary;
use crate::context::Severity;
use crate::records::notification::Notification;

pub const EMAIL_SUBJECT: &str = "[{{rule.severity}}] {{headline}}";
pub const EMAIL_TEXT: &str = "{{headline}}\n\n{{#each facts}}{{label}}: {{value}}\n{{/each}}\n\
Notification {{notification.id}} at {{notification.timestamp}}\n";
pub const EMAIL_HTML: &str = "<html><body><h2>{{headline}}</h2>\n<table>\n{{#each facts}}\
<tr><th align=\"left\">{{label}}</th><td>{{value}}</td></tr>\n{{/each}}</table>\n\
<p>Notification {{notification.id}} at {{notification.timestamp}}</p></body></html>\n";

/// A text message: the headline, then the facts on one line.
pub const SMS_TEXT: &str = "{{headline}}\n{{#each facts}}{{#unless @first}}; {{/unless}}{{label}}: {{value}}{{/each}}";

/// A webhook's body: Standard Webhooks' `{type, timestamp, data}` envelope around the
/// template data.
pub fn webhook(n: &Notification, data: &Value) -> String {
    /// The envelope, written straight to text (no copy of `data`).
    #[derive(Serialize)]
    struct Envelope<'a> {
        data: &'a Value,
        timestamp: jiff::Timestamp,
        r#type: String,
    }
    let kind = serde_json::to_value(n.kind).expect("kinds serialize");
    let r#type = format!("alert.{}", kind.as_str().expect("a kind is a string"));
    serde_json::to_string(&Envelope { data, timestamp: n.created_at, r#type }).expect("payloads serialize")
}

/// Slack's limits (Block Kit reference).
pub const SLACK_MAX_BLOCKS: usize = 50;
pub const SLACK_MAX_HEADER: usize = 150;
pub const SLACK_MAX_SECTION: usize = 3000;
pub const SLACK_MAX_FIELDS: usize = 10;
pub const SLACK_MAX_FIELD: usize = 2000;
/// The `text` fallback shown in notifications; Slack truncates past 40,000 characters.
const SLACK_MAX_TEXT: usize = 40_000;

pub fn slack(n: &Notification, summary: &Summary) -> Value {
    let mut blocks = vec![json!({ "type": "header", "text": { "type": "plain_text", "text": summary.headline } })];
    if let Some(message) = &n.message {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": message } }));
    }
    for chunk in summary.facts.chunks(SLACK_MAX_FIELDS) {
        let fields: Vec<Value> =
            chunk.iter().map(|f| json!({ "type": "mrkdwn", "text": format!("*{}*\n{}", f.label, f.value) })).collect();
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": format!("Klaxon notification {} at {}", n.id, n.created_at) }],
    }));
    json!({ "text": summary.headline, "blocks": blocks })
}

/// Cuts a Slack message down to Slack's limits: blocks past 50 are dropped (the last kept one
/// says how many), and header, section and field texts are shortened.
pub fn fit_slack(body: &mut Value) -> Result<(), String> {
    let Some(message) = body.as_object_mut() else { return Err("a Slack message is a JSON object".into()) };
    if let Some(text) = message.get_mut("text") {
        shorten(text, SLACK_MAX_TEXT);
    }
    let Some(blocks) = message.get_mut("blocks") else { return Ok(()) };
    let Some(blocks) = blocks.as_array_mut() else { return Err("`blocks` must be an array".into()) };
    if blocks.len() > SLACK_MAX_BLOCKS {
        let dropped = blocks.len() - SLACK_MAX_BLOCKS + 1;
        blocks.truncate(SLACK_MAX_BLOCKS - 1);
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": format!("{dropped} more blocks left out (Slack shows at most {SLACK_MAX_BLOCKS})") }],
        }));
    }
    for block in blocks.iter_mut() {
        match block["type"].as_str() {
            Some("header") => shorten(&mut block["text"]["text"], SLACK_MAX_HEADER),
            Some("section") => {
                if block.get("text").is_some() {
                    shorten(&mut block["text"]["text"], SLACK_MAX_SECTION);
                }
                if let Some(fields) = block.get_mut("fields").and_then(Value::as_array_mut) {
                    fields.truncate(SLACK_MAX_FIELDS);
                    for field in fields {
                        shorten(&mut field["text"], SLACK_MAX_FIELD);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Teams rejects messages over 28 KB; cards must be Adaptive Cards 1.4 or lower for
/// Workflows.
pub const TEAMS_MAX_BYTES: usize = 28 * 1024;
const ADAPTIVE_CARD: &str = "application/vnd.microsoft.card.adaptive";

pub fn teams(n: &Notification, summary: &Summary) -> Value {
    let color = match n.context.rule.severity {
        Severity::Info => "Accent",
        Severity::Warning => "Warning",
        Severity::Critical => "Attention",
    };
    let mut body = vec![json!({
        "type": "TextBlock", "text": summary.headline, "weight": "Bolder", "size": "Medium", "wrap": true, "color": color,
    })];
    if let Some(message) = &n.message {
        body.push(json!({ "type": "TextBlock", "text": message, "wrap": true }));
    }
    let facts: Vec<Value> = summary.facts.iter().map(|f| json!({ "title": f.label, "value": f.value })).collect();
    body.push(json!({ "type": "FactSet", "facts": facts }));
    body.push(json!({
        "type": "TextBlock", "text": format!("Klaxon notification {} at {}", n.id, n.created_at),
        "isSubtle": true, "size": "Small", "wrap": true,
    }));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": ADAPTIVE_CARD,
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    })
}

/// Checks a Teams message's shape and card versions, and shortens its longest texts until it
/// is under 28 KB.
pub fn fit_teams(body: &mut Value) -> Result<(), String> {
    if body["type"] != "message" {
        return Err("a Teams message has `\"type\": \"message\"`".into());
    }
    let Some(attachments) = body["attachments"].as_array() else {
        return Err("a Teams message has an `attachments` array".into());
    };
    for (i, attachment) in attachments.iter().enumerate() {
        if attachment["contentType"] != ADAPTIVE_CARD {
            return Err(format!("attachments[{i}].contentType must be `{ADAPTIVE_CARD}`"));
        }
        let version = attachment["content"]["version"].as_str().unwrap_or_default();
        let parsed: Option<(u32, u32)> =
            version.split_once('.').and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)));
        if parsed.is_none_or(|v| v > (1, 4)) {
            return Err(format!(
                "attachments[{i}].content.version is `{version}`; Teams Workflows take Adaptive Cards 1.4 or lower"
            ));
        }
    }
    for _ in 0..64 {
        let size = body.to_string().len();
        if size <= TEAMS_MAX_BYTES {
            return Ok(());
        }
        let Some(longest) = longest_string(&mut body["attachments"]) else { break };
        let chars = longest.as_str().map_or(0, |s| s.chars().count());
        let excess = size - TEAMS_MAX_BYTES;
        shorten(longest, chars.saturating_sub(excess.max(chars / 2)).max(1));
    }
    Err(format!("the message cannot be brought under {TEAMS_MAX_BYTES} bytes"))
}

fn longest_string(value: &mut Value) -> Option<&mut Value> {
    let mut best: Option<&mut Value> = None;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s)
                if s.len() > 64 && best.as_ref().is_none_or(|b| b.as_str().is_some_and(|b| b.len() < s.len())) =>
            {
                best = Some(v);
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => stack.extend(map.values_mut()),
            _ => {}
        }
    }
    best
}

/// Shortens a string value to `max` characters, the last one an ellipsis.
fn shorten(value: &mut Value, max: usize) {
    if let Value::String(s) = value
        && s.chars().count() > max
    {
        let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        *s = cut;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_messages_are_cut_to_slack_limits() {
        let long = "x".repeat(5000);
        let mut blocks = vec![json!({ "type": "header", "text": { "type": "plain_text", "text": long } })];
        blocks.extend((0..80).map(|_| json!({ "type": "section", "text": { "type": "mrkdwn", "text": long } })));
        let mut message = json!({ "text": "t", "blocks": blocks });
        fit_slack(&mut message).unwrap();
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), SLACK_MAX_BLOCKS);
        assert_eq!(blocks[0]["text"]["text"].as_str().unwrap().chars().count(), SLACK_MAX_HEADER);
        assert_eq!(blocks[1]["text"]["text"].as_str().unwrap().chars().count(), SLACK_MAX_SECTION);
        assert!(blocks[49]["elements"][0]["text"].as_str().unwrap().starts_with("32 more blocks"));
    }

    #[test]
    fn teams_cards_are_checked_and_shrunk() {
        let card = |version: &str, text: &str| {
            json!({ "type": "message", "attachments": [{ "contentType": ADAPTIVE_CARD, "content": {
                "type": "AdaptiveCard", "version": version, "body": [{ "type": "TextBlock", "text": text }] } }] })
        };
        assert!(fit_teams(&mut card("1.5", "hi")).unwrap_err().contains("1.4 or lower"));
        let mut big = card("1.4", &"y".repeat(100_000));
        fit_teams(&mut big).unwrap();
        assert!(big.to_string().len() <= TEAMS_MAX_BYTES);
    }
}
