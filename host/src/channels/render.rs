//! Turning a notification into what a channel sends: Handlebars templates in strict mode (a
//! missing variable is an error, never an empty string), the built-in payloads, or a template
//! plugin's output, then the limits of Slack and Teams.
//!
//! Templates see the design's context variables plus `kind`, `message`, `step`, `headline` (one
//! line saying what happened) and `facts` (a list of `{label, value}`), and a `json` helper that
//! writes any value as JSON (`{{json customer.fields}}`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use handlebars::{Handlebars, RenderErrorReason};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::summary::Summary;
use super::{ChannelSpec, Kind, builtin, sms};
use crate::context::{
    AlertState, CohortRef, CustomerRef, EventRef, Member, Part, RuleRef, Severity, Transition, Window,
};
use crate::error::{Invalid, invalid};
use crate::plugins::io::Payload as PluginPayload;
use crate::records::notification::{Kind as NotificationKind, Notification};

/// What a channel sends, kept with each delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Payload {
    /// An HTTP POST (webhook, Slack, Teams); signing headers are added per attempt.
    Http { content_type: String, headers: Vec<(String, String)>, body: String },
    Email {
        /// The addresses: the channel's own, its groups' and its subscriptions' members.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        to: Vec<String>,
        subject: String,
        text: String,
        html: Option<String>,
    },
    Sms {
        /// The numbers: the channel's own, its groups' and its subscriptions' members' phones.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        to: Vec<String>,
        /// The text, cut to `sms::MAX_SEGMENTS` segments.
        body: String,
        /// The segments the text takes (GSM-7: 160 alone, 153 each; UCS-2: 70 and 67).
        segments: usize,
    },
    /// The requests a channel plugin asked for, made one after another.
    Requests { requests: Vec<Request> },
}

/// One request of a plugin channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What templates see.
pub fn data(n: &Notification, summary: &Summary) -> Value {
    let mut data = serde_json::to_value(&n.context).expect("contexts serialize");
    let object = data.as_object_mut().expect("a context is an object");
    object.insert("kind".into(), json!(n.kind));
    object.insert("message".into(), json!(n.message));
    object.insert("step".into(), json!(n.step));
    object.insert("headline".into(), json!(summary.headline));
    object.insert("facts".into(), json!(summary.facts));
    data
}

/// Why a notification could not be rendered; `field` names the template at fault.
pub type RenderFailure = Invalid;

/// The payload the channel's templates (or built-ins) make of `n`. Incidents, maintenances,
/// digests and groups are not what a rule's templates were written for: they take the
/// built-in payloads.
pub fn render(spec: &ChannelSpec, n: &Notification) -> Result<Payload, RenderFailure> {
    let summary = Summary::of(n);
    let data = data(n, &summary);
    if n.kind.is_rule_kind() {
        render_data(spec, n, &summary, &data)
    } else {
        render_data(&spec.built_in(), n, &summary, &data)
    }
}

fn render_data(
    spec: &ChannelSpec,
    n: &Notification,
    summary: &Summary,
    data: &Value,
) -> Result<Payload, RenderFailure> {
    match spec.kind {
        Kind::Email => {
            let subject = template("subject", spec.subject.as_deref().unwrap_or(builtin::EMAIL_SUBJECT), data, false)?;
            Ok(Payload::Email {
                to: spec.to.clone(),
                subject: one_line(&subject),
                text: template("text", spec.text.as_deref().unwrap_or(builtin::EMAIL_TEXT), data, false)?,
                html: Some(template("html", spec.html.as_deref().unwrap_or(builtin::EMAIL_HTML), data, true)?),
            })
        }
        Kind::Webhook => {
            let content_type = spec.content_type.clone().unwrap_or_else(|| JSON.to_string());
            let body = match &spec.body {
                Some(body) => {
                    let body = template("body", body, data, false)?;
                    if is_json(&content_type) {
                        parse_json(&body)?;
                    }
                    body
                }
                None => builtin::webhook(n, data),
            };
            let headers = spec
                .headers
                .iter()
                .map(|(name, t)| Ok((name.clone(), one_line(&template(&format!("headers.{name}"), t, data, false)?))))
                .collect::<Result<_, RenderFailure>>()?;
            Ok(Payload::Http { content_type, headers, body })
        }
        Kind::Sms => {
            let text = template("body", spec.body.as_deref().unwrap_or(builtin::SMS_TEXT), data, false)?;
            Ok(sms_payload(spec, &text))
        }
        Kind::Slack | Kind::Teams => {
            let body = match &spec.body {
                Some(body) => parse_json(&template("body", body, data, false)?)?,
                None if spec.kind == Kind::Slack => builtin::slack(n, summary),
                None => builtin::teams(n, summary),
            };
            chat(spec.kind, body, Vec::new())
        }
        Kind::Plugin => Err(invalid("plugin", "a plugin channel's requests come from its plugin")),
    }
}

/// The payload a template plugin's output makes for the channel.
pub fn from_plugin(spec: &ChannelSpec, n: &Notification, out: PluginPayload) -> Result<Payload, RenderFailure> {
    let at = "template_plugin";
    match spec.kind {
        Kind::Webhook => Ok(Payload::Http { content_type: out.content_type, headers: out.headers, body: out.body }),
        Kind::Slack | Kind::Teams => {
            let body = serde_json::from_str(&out.body)
                .map_err(|e| invalid(at, format!("the plugin's output is not JSON: {e}")))?;
            chat(spec.kind, body, out.headers)
        }
        Kind::Email => {
            let summary = Summary::of(n);
            let data = data(n, &summary);
            let subject = match out.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("subject")) {
                Some((_, subject)) => subject.clone(),
                None => template("subject", spec.subject.as_deref().unwrap_or(builtin::EMAIL_SUBJECT), &data, false)?,
            };
            let (text, html) = if out.content_type.starts_with("text/html") {
                (template("text", spec.text.as_deref().unwrap_or(builtin::EMAIL_TEXT), &data, false)?, Some(out.body))
            } else {
                (out.body, None)
            };
            Ok(Payload::Email { to: spec.to.clone(), subject: one_line(&subject), text, html })
        }
        Kind::Sms => Ok(sms_payload(spec, &out.body)),
        Kind::Plugin => Err(invalid(at, "a plugin channel takes no template plugin")),
    }
}

/// A text message to the channel's numbers, within the segments one may take.
fn sms_payload(spec: &ChannelSpec, text: &str) -> Payload {
    let (body, segments) = sms::fit(text.trim());
    Payload::Sms { to: spec.to.clone(), body, segments }
}

/// A Slack or Teams body, brought within the service's limits.
fn chat(kind: Kind, mut body: Value, headers: Vec<(String, String)>) -> Result<Payload, RenderFailure> {
    if kind == Kind::Slack {
        builtin::fit_slack(&mut body).map_err(|message| invalid("body", message))?;
    } else {
        builtin::fit_teams(&mut body).map_err(|message| invalid("body", message))?;
    }
    Ok(Payload::Http { content_type: JSON.to_string(), headers, body: body.to_string() })
}

const JSON: &str = "application/json";

fn is_json(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case(JSON) || t.trim().ends_with("+json"))
}

fn parse_json(body: &str) -> Result<Value, RenderFailure> {
    serde_json::from_str(body)
        .map_err(|e| invalid("body", format!("does not render to JSON ({e}); write values with {{{{json value}}}}")))
}

fn one_line(text: &str) -> String {
    text.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The two registries: plain output for bodies, headers and text, HTML-escaped output for
/// HTML. Both strict, both with the `json` helper.
fn registry(html: bool) -> &'static Handlebars<'static> {
    static PLAIN: OnceLock<Handlebars<'static>> = OnceLock::new();
    static HTML: OnceLock<Handlebars<'static>> = OnceLock::new();
    let make = move || {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        if !html {
            registry.register_escape_fn(handlebars::no_escape);
        }
        registry.register_helper("json", Box::new(json_helper));
        registry
    };
    if html { HTML.get_or_init(make) } else { PLAIN.get_or_init(make) }
}

/// `{{json value}}`: the value as JSON. A missing value is a missing variable, named.
fn json_helper(
    h: &handlebars::Helper,
    _: &Handlebars,
    _: &handlebars::Context,
    _: &mut handlebars::RenderContext,
    out: &mut dyn handlebars::Output,
) -> handlebars::HelperResult {
    let param = h.param(0).ok_or(RenderErrorReason::ParamNotFoundForIndex("json", 0))?;
    if param.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(param.relative_path().cloned()).into());
    }
    out.write(&serde_json::to_string(param.value()).expect("JSON values serialize"))?;
    Ok(())
}

fn template(field: &str, text: &str, data: &Value, html: bool) -> Result<String, RenderFailure> {
    registry(html).render_template(text, data).map_err(|e| invalid(field, e.to_string()))
}

/// Renders every template of `spec` against its sample notification (see [`sample_for`]).
pub fn check(spec: &ChannelSpec) -> Result<(), RenderFailure> {
    let sample = sample_for(spec, "tenant", Timestamp::UNIX_EPOCH);
    if sample.placeholders.len() >= MAX_PLACEHOLDERS {
        return Err(invalid("body", "names too many custom fields to check"));
    }
    render(spec, &sample.notification).map(drop)
}

/// The sample notification a channel's preview, test send and save-time check render.
#[derive(Debug)]
pub struct Sample {
    pub notification: Notification,
    /// The custom fields and event properties the channel's templates name that the sample had
    /// to make up, by path (`customer.fields.plan`), with the placeholder it gave each.
    pub placeholders: BTreeMap<String, Value>,
}

/// The [`sample`] notification, with a placeholder for every custom field of customers and
/// property of events that `spec`'s templates name: those are the tenant's own, so a template may
/// name any of them, and the sample must render whatever a save accepted.
pub fn sample_for(spec: &ChannelSpec, tenant: &str, now: Timestamp) -> Sample {
    let mut notification = sample(tenant, now);
    let mut placeholders = BTreeMap::new();
    while placeholders.len() < MAX_PLACEHOLDERS {
        let data = data(&notification, &Summary::of(&notification));
        let Some(path) = spec.templates().iter().find_map(|(_, t)| missing_free_field(t, &data)) else { break };
        let value = json!(format!("sample {}", path.rsplit('.').next().unwrap_or_default()));
        if !fill(&mut notification, &path, value.clone()) {
            break;
        }
        placeholders.insert(path, value);
    }
    Sample { notification, placeholders }
}

const MAX_PLACEHOLDERS: usize = 64;
const FREE_FORM: [&str; 2] = ["customer.fields.", "event.properties."];

/// The custom field or event property a template names that `data` lacks, if that is why it
/// fails.
fn missing_free_field(text: &str, data: &Value) -> Option<String> {
    let error = registry(false).render_template(text, data).err()?;
    let RenderErrorReason::MissingVariable(Some(path)) = error.reason() else { return None };
    FREE_FORM.iter().any(|prefix| path.starts_with(prefix)).then(|| path.clone())
}

/// Sets `path` in the notification's context to `value`, making the objects on the way; false
/// when a value that is not an object stands on the way.
fn fill(n: &mut Notification, path: &str, value: Value) -> bool {
    let mut context = serde_json::to_value(&n.context).expect("contexts serialize");
    let (parents, last) = path.rsplit_once('.').expect("a free-form path has a parent");
    let mut at = &mut context;
    for segment in parents.split('.') {
        let Some(object) = at.as_object_mut() else { return false };
        at = object.entry(segment).or_insert_with(|| json!({}));
    }
    let Some(object) = at.as_object_mut() else { return false };
    object.insert(last.to_string(), value);
    match serde_json::from_value(context) {
        Ok(context) => {
            n.context = context;
            true
        }
        Err(_) => false,
    }
}

/// A notification with every context variable of a rule's notification set, for previews, tests
/// and save-time checks.
pub fn sample(tenant: &str, now: Timestamp) -> Notification {
    let hour = jiff::SignedDuration::from_hours(1);
    let mut fields = Map::new();
    fields.insert("tier".into(), json!("enterprise"));
    fields.insert("seats".into(), json!(120));
    let mut properties = Map::new();
    properties.insert("hours".into(), json!(12.5));
    let rule = RuleRef {
        id: "rul_sample".into(),
        name: "Sample rule".into(),
        severity: Severity::Warning,
        category: Some("usage".into()),
    };
    let mut n = Notification::new(tenant, NotificationKind::Alarm, rule, now);
    n.rule_id = Some("rul_sample".into());
    n.scope_key = "cus_sample".into();
    n.customer_id = Some("cus_sample".into());
    n.message = Some("This is a sample notification.".into());
    let c = &mut n.context;
    c.customer = Some(CustomerRef { id: "cus_sample".into(), name: Some("Sample Customer".into()), fields });
    c.state = Transition { previous: AlertState::Ok, current: AlertState::InAlarm };
    c.value = Some(1250.0);
    c.threshold = Some(1000.0);
    c.window = Some(Window { start: now.saturating_sub(hour).expect("in range"), end: now });
    c.event = Some(EventRef {
        id: "evt_sample".into(),
        customer_id: Some("cus_sample".into()),
        event_type: "usage".into(),
        timestamp: now,
        properties,
    });
    c.cohort = Some(CohortRef { id: "coh_sample".into(), name: "Sample cohort".into() });
    c.entered =
        vec![Member { id: "cus_sample".into(), name: Some("Sample Customer".into()), fields: Map::new(), at: now }];
    c.exited = vec![Member { id: "cus_other".into(), name: None, fields: Map::new(), at: now }];
    c.entered_count = 1;
    c.exited_count = 1;
    c.part = Some(Part { number: 1, of: 1 });
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::HoldKind;

    fn spec(kind: Kind) -> ChannelSpec {
        serde_json::from_value(json!({ "name": "c", "kind": kind })).unwrap()
    }

    #[test]
    fn missing_variables_are_errors_but_custom_fields_are_not() {
        let mut webhook = spec(Kind::Webhook);
        webhook.body = Some(r#"{"plan": {{json customer.fields.plan}}, "who": "{{customer.id}}"}"#.into());
        check(&webhook).unwrap();
        webhook.body = Some(r#"{"x": "{{rule.nmae}}"}"#.into());
        let err = check(&webhook).unwrap_err();
        assert_eq!(err.field, "body");
        assert!(err.message.contains("rule.nmae"), "{}", err.message);
    }

    #[test]
    fn json_bodies_must_render_to_json() {
        let mut webhook = spec(Kind::Webhook);
        webhook.body = Some(r#"{"name": {{rule.name}}}"#.into());
        let err = check(&webhook).unwrap_err();
        assert!(err.message.contains("does not render to JSON"), "{}", err.message);
        webhook.content_type = Some("text/plain".into());
        check(&webhook).unwrap();
    }

    #[test]
    fn html_is_escaped_only_in_html() {
        let mut n = sample("t", Timestamp::UNIX_EPOCH);
        n.context.rule.name = "<b>&</b>".into();
        let Payload::Email { subject, text, html, .. } = render(&spec(Kind::Email), &n).unwrap() else { panic!() };
        assert!(subject.contains("<b>&</b>") && text.contains("<b>&</b>"));
        assert!(html.unwrap().contains("&lt;b&gt;&amp;&lt;/b&gt;"));
    }

    #[test]
    fn a_digest_of_a_thousand_takes_the_built_in_payloads_within_each_channels_limits() {
        use crate::context::{DigestItem, DigestRef};
        let mut n = sample("t", Timestamp::UNIX_EPOCH);
        n.kind = NotificationKind::Digest;
        n.context.customer = None;
        let long = "x".repeat(200);
        let items: Vec<DigestItem> = (0..1000)
            .map(|i| DigestItem {
                id: format!("ntf_{i}"),
                headline: format!("Rule {i} is in alarm for {long}"),
                severity: Severity::Warning,
                rule_id: None,
                customer_id: None,
                created_at: Timestamp::UNIX_EPOCH,
            })
            .collect();
        n.message = Some(items.iter().take(50).map(|i| format!("- {}", i.headline)).collect::<Vec<_>>().join("\n"));
        n.context.digest =
            Some(DigestRef { reason: HoldKind::Digest, until: Timestamp::UNIX_EPOCH, count: 1000, items });

        // A template written for rules (here a broken one) does not apply to digests.
        let mut slack = spec(Kind::Slack);
        slack.body = Some(r#"{"text": "{{rule.nmae}}"}"#.into());
        let Payload::Http { body, .. } = render(&slack, &n).unwrap() else { panic!() };
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["text"], "Digest: 1000 notifications");
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= builtin::SLACK_MAX_BLOCKS);
        for text in blocks.iter().filter_map(|b| b["text"]["text"].as_str()) {
            assert!(text.chars().count() <= builtin::SLACK_MAX_SECTION, "{}", text.len());
        }
        let Payload::Http { body, .. } = render(&spec(Kind::Teams), &n).unwrap() else { panic!() };
        assert!(body.len() <= builtin::TEAMS_MAX_BYTES, "{}", body.len());
        assert!(body.contains("Digest: 1000 notifications"));
        let Payload::Email { subject, text, .. } = render(&spec(Kind::Email), &n).unwrap() else { panic!() };
        assert_eq!(subject, "[warning] Digest: 1000 notifications");
        assert!(text.contains("Rule 49 is in alarm") && !text.contains("Rule 50 is"), "the message lists 50");
        let Payload::Http { body, .. } = render(&spec(Kind::Webhook), &n).unwrap() else { panic!() };
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (body["type"].as_str(), body["data"]["digest"]["items"].as_array().map(Vec::len)),
            (Some("alert.digest"), Some(1000))
        );
    }

    #[test]
    fn a_forecasts_projection_shows_in_every_built_in_payload() {
        use crate::context::{ForecastMethod, ForecastRef};
        let mut n = sample("t", Timestamp::UNIX_EPOCH);
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        n.context.forecast = Some(ForecastRef {
            method: ForecastMethod::Holt,
            projected: 1_487.666_666,
            crossing_at: Some(at("2030-01-21T19:00:00Z")),
            by: at("2030-02-01T00:00:00Z"),
        });
        let shown = "1487.67 by 2030-02-01T00:00:00Z";
        for kind in [Kind::Slack, Kind::Teams] {
            let Payload::Http { body, .. } = render(&spec(kind), &n).unwrap() else { panic!() };
            assert!(body.contains(shown) && body.contains("2030-01-21T19:00:00Z"), "{kind:?}: {body}");
        }
        let Payload::Email { text, .. } = render(&spec(Kind::Email), &n).unwrap() else { panic!() };
        assert!(text.contains(&format!("Projected: {shown}")), "{text}");
        assert!(text.contains("Reaches the threshold: 2030-01-21T19:00:00Z"), "{text}");
        let Payload::Http { body, .. } = render(&spec(Kind::Webhook), &n).unwrap() else { panic!() };
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["data"]["forecast"]["method"], "holt", "{body}");
    }
}
