//! Renders a notification as a Slack Block Kit message: a header, a summary, the facts as
//! fields, and a link to the notification's history. Texts are cut to Slack's limits
//! (150 characters in a header, 3000 in a section).

use klaxon_sdk::{AlertState, Context, Payload, Severity, Template};
use serde_json::{Value, json};

const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;

pub struct SlackBlocks;

impl Template for SlackBlocks {
    fn render(context: &Context) -> Result<Payload, String> {
        let resolved = context.state.current == AlertState::Ok && context.state.previous == AlertState::InAlarm;
        let (icon, verb) =
            if resolved { (":white_check_mark:", "Resolved") } else { (icon(context.rule.severity), "Alert") };
        let header = format!("{icon} {verb}: {}", context.rule.name);

        let mut summary = format!("*{}*", context.rule.name);
        if let Some(customer) = &context.customer {
            summary.push_str(&format!(" for *{}*", customer.name.as_deref().unwrap_or(&customer.id)));
        }
        match (context.value, context.threshold) {
            (Some(value), Some(threshold)) => {
                summary.push_str(&format!(": {value} against a threshold of {threshold}"))
            }
            (Some(value), None) => summary.push_str(&format!(": {value}")),
            _ => {}
        }
        if let Some(event) = &context.event {
            summary.push_str(&format!("\nEvent `{}` ({})", event.event_type, event.id));
        }

        let mut fields = vec![field("Severity", severity_name(context.rule.severity))];
        if let Some(customer) = &context.customer {
            fields.push(field("Customer", &customer.id));
        }
        if let Some(value) = context.value {
            fields.push(field("Value", &value.to_string()));
        }
        if let Some(threshold) = context.threshold {
            fields.push(field("Threshold", &threshold.to_string()));
        }
        if let Some(window) = &context.window {
            fields.push(field(
                "Window",
                &format!(
                    "<!date^{}^{{date_short}} {{time}}|start> to <!date^{}^{{date_short}} {{time}}|end>",
                    window.start / 1000,
                    window.end / 1000
                ),
            ));
        }

        let message = json!({
            "text": cut(&header, SECTION_MAX),
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": cut(&header, HEADER_MAX), "emoji": true } },
                { "type": "section", "text": { "type": "mrkdwn", "text": cut(&summary, SECTION_MAX) } },
                { "type": "section", "fields": fields },
                { "type": "context", "elements": [
                    { "type": "mrkdwn", "text": format!("<{}|Notification {}>", context.notification.url, context.notification.id) }
                ] },
            ],
        });
        Payload::json(&message)
    }
}

fn field(title: &str, value: &str) -> Value {
    json!({ "type": "mrkdwn", "text": cut(&format!("*{title}*\n{value}"), FIELD_MAX) })
}

fn icon(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => ":information_source:",
        Severity::Warning => ":warning:",
        Severity::Critical => ":rotating_light:",
    }
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

klaxon_sdk::template!(SlackBlocks);
