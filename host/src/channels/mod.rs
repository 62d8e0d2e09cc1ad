//! Channels: where a rule's notifications go (a signed webhook, Slack, Microsoft Teams, email or
//! SMS) and the templates that turn a notification into what is sent. Checked in full,
//! templates included, when saved.

pub mod address;
mod builtin;
mod confirmations;
mod health;
pub mod noise;
pub mod payloads;
pub mod render;
pub mod signing;
pub mod sms;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::duration::Duration;
use crate::error::{Invalid, invalid};
use crate::ids::new_id;
use crate::store::{Store, StoreResult};
use address::AddressPolicy;
use noise::{DigestSchedule, Noise, Outside, QuietHours};

const MAX_NAME_BYTES: usize = 200;
const MAX_RECIPIENTS: usize = 50;
const MAX_HEADERS: usize = 20;
const MAX_SECRETS: usize = 5;
const MAX_TEMPLATE_BYTES: usize = 65_536;
const MAX_IN_FLIGHT: u32 = 64;
const MAX_RATE: f64 = 1000.0;
const MAX_ALLOWED_HOSTS: usize = 20;
/// Shorter secrets are not redacted: replacing every `1` or `on` would garble the record.
const MIN_REDACTED_BYTES: usize = 4;
/// Headers Klaxon sets itself on every webhook request.
const RESERVED_HEADERS: [&str; 6] =
    ["webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "content-length", "host"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An HTTP POST signed per Standard Webhooks.
    Webhook,
    /// A Slack incoming webhook, with a Block Kit message.
    Slack,
    /// A Microsoft Teams Workflows webhook, with an Adaptive Card in a `message`.
    Teams,
    /// Email over the deployment's SMTP server.
    Email,
    /// Text messages through a provider speaking Twilio's Messages API.
    Sms,
    /// Requests a tenant's channel plugin asks for, made by Klaxon to the hosts it allows.
    Plugin,
}

/// A channel as a client writes it (`POST` and `PUT` take the whole channel).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    pub kind: Kind,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Where webhook, Slack and Teams channels POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Email addresses (email), or phone numbers in E.164 form (SMS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Recipient groups an email or text goes to (their members' addresses or phones, read when
    /// it is made).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub to_groups: BTreeSet<String>,
    /// A Handlebars template for the request body (webhook, Slack, Teams) or the text (SMS);
    /// the built-in payload when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body's content type (webhook); `application/json` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Extra request headers, each value a Handlebars template (webhook).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Handlebars templates of an email's subject, text and HTML parts; built-in when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The SMS provider (SMS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsProvider>,
    /// A template plugin whose output is the payload, instead of the templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_plugin: Option<String>,
    /// The channel plugin that says what to send (kind `plugin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Its config (a JSON object), shown to anyone who may read the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    /// Secrets merged over `config` when the plugin is called (an API key, a routing key). Only
    /// read, kept when a replacement leaves them out, and never shown or recorded: their values
    /// are redacted from the plugin's log and the attempts.
    #[serde(default, skip_serializing)]
    pub secret_config: Option<Map<String, Value>>,
    /// The hosts the plugin's requests may go to (`api.pagerduty.com`), each also under the
    /// deployment's address policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_hosts: Vec<String>,
    /// Webhook signing secrets (`whsec_` + base64). Only read: generated when a new webhook
    /// channel has none, kept when a replacement leaves them out.
    #[serde(default, skip_serializing)]
    pub secrets: Option<Vec<String>>,
    /// Attempts in flight at once to this channel.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: u32,
    /// Attempts per second at most; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
    /// Noise control of everything sent here: quiet hours, a digest, grouping (see
    /// `noise`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestSchedule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<Duration>,
    /// Time intervals (by name) outside which nothing goes out: held until the next one begins,
    /// or dropped with `outside: "drop"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_during: Vec<String>,
    #[serde(default, skip_serializing_if = "Outside::is_hold")]
    pub outside: Outside,
}

fn enabled() -> bool {
    true
}

/// Where an SMS channel's texts go: a provider's Messages resource
/// (`POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`), as Twilio defines it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsProvider {
    #[serde(default = "twilio")]
    pub base_url: String,
    pub account_sid: String,
    /// The sending number (E.164), or else `messaging_service_sid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_service_sid: Option<String>,
    /// Only read: kept with the channel as a secret (`auth_token` in its view, for keys that may
    /// change channels); a replacement that leaves it out keeps it.
    #[serde(default, skip_serializing)]
    pub auth_token: Option<String>,
}

fn twilio() -> String {
    "https://api.twilio.com".to_string()
}

const MAX_SID_BYTES: usize = 64;
const MAX_TOKEN_BYTES: usize = 256;

fn default_in_flight() -> u32 {
    4
}

/// A webhook signing secret; old ones stay valid until `expires_at` during a rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    pub secret: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

impl Secret {
    /// A secret in force from `now` until a rotation.
    fn new(secret: String, now: Timestamp) -> Secret {
        Secret { secret, created_at: now, expires_at: None }
    }

    pub fn active(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// A stored channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    pub spec: ChannelSpec,
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// An SMS channel's provider auth token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// A plugin channel's secrets (`secret_config`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub secret_config: Map<String, Value>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Since when every attempt has failed (cleared by a success).
    #[serde(default)]
    pub failing_since: Option<Timestamp>,
    /// Why Klaxon disabled the channel; cleared when a client enables it again.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// A customer's email addresses and whether each was confirmed (`confirmations`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub confirmations: BTreeMap<String, confirmations::Confirmation>,
}

impl Channel {
    /// A new channel from its spec, with a fresh signing secret for a webhook given none; not
    /// stored.
    pub fn new(created_by: &str, mut spec: ChannelSpec, now: Timestamp) -> Channel {
        let secrets = match (spec.kind, spec.secrets.take()) {
            (Kind::Webhook, Some(given)) => given,
            (Kind::Webhook, None) => vec![signing::new_secret()],
            _ => Vec::new(),
        };
        let auth_token = spec.sms.as_mut().and_then(|sms| sms.auth_token.take());
        let secret_config = spec.secret_config.take().unwrap_or_default();
        Channel {
            id: new_id("chn"),
            spec,
            secrets: secrets.into_iter().map(|secret| Secret::new(secret, now)).collect(),
            auth_token,
            secret_config,
            created_by: created_by.to_string(),
            created_at: now,
            updated_at: now,
            failing_since: None,
            disabled_reason: None,
            confirmations: BTreeMap::new(),
        }
    }

    /// A plugin channel's config as its plugin reads it: `config` with the secrets over it.
    pub fn plugin_config(&self) -> Value {
        let mut config = match &self.spec.config {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        config.extend(self.secret_config.clone());
        Value::Object(config)
    }

    /// The texts to redact from what a plugin channel logs and records: its secrets' values.
    pub fn secret_texts(&self) -> Vec<String> {
        self.secret_config
            .values()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .filter(|text| text.len() >= MIN_REDACTED_BYTES)
            .collect()
    }

    /// `text` with every secret of the channel replaced.
    pub fn redact(&self, text: &str) -> String {
        self.secret_texts().iter().fold(text.to_string(), |text, secret| text.replace(secret.as_str(), "[redacted]"))
    }

    /// The signing keys in force at `now`, newest first.
    pub fn signing_keys(&self, now: Timestamp) -> Vec<Vec<u8>> {
        self.secrets.iter().filter(|s| s.active(now)).filter_map(|s| signing::decode_secret(&s.secret).ok()).collect()
    }
}

/// A channel as the API shows it. Secrets are shown only to keys that may change channels.
#[derive(Debug, Serialize)]
pub struct ChannelView<'a> {
    pub id: &'a str,
    #[serde(flatten)]
    pub spec: &'a ChannelSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<&'a Secret>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<&'a str>,
    pub failing_since: Option<Timestamp>,
    pub disabled_reason: Option<&'a str>,
    /// Each address a customer gave: `pending` until its confirmation link is followed.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub confirmations: BTreeMap<&'a str, &'static str>,
    pub created_by: &'a str,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Channel {
    pub fn view(&self, with_secrets: bool, now: Timestamp) -> ChannelView<'_> {
        ChannelView {
            id: &self.id,
            spec: &self.spec,
            secrets: with_secrets.then(|| self.secrets.iter().filter(|s| s.active(now)).collect()),
            auth_token: self.auth_token.as_deref().filter(|_| with_secrets),
            failing_since: self.failing_since,
            disabled_reason: self.disabled_reason.as_deref(),
            confirmations: self.confirmation_states(),
            created_by: &self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl ChannelSpec {
    /// Every check that needs nothing but the channel and the deployment's address policy,
    /// templates rendered against a sample notification included. (A template plugin is
    /// checked by the caller, which can reach plugins.)
    pub fn check(&self, policy: &AddressPolicy) -> Result<(), Invalid> {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_BYTES {
            return Err(invalid("name", format!("must be 1 to {MAX_NAME_BYTES} bytes")));
        }
        let is = |kinds: &[Kind]| kinds.contains(&self.kind);
        let only = |field: &str, present: bool, kinds: &[Kind]| -> Result<(), Invalid> {
            if present && !is(kinds) {
                let names: Vec<String> = kinds.iter().map(|k| format!("{k:?}").to_lowercase()).collect();
                return Err(invalid(field, format!("applies only to {} channels", names.join(" and "))));
            }
            Ok(())
        };
        let http = [Kind::Webhook, Kind::Slack, Kind::Teams];
        only("url", self.url.is_some(), &http)?;
        only("body", self.body.is_some(), &[Kind::Webhook, Kind::Slack, Kind::Teams, Kind::Sms])?;
        only("to", !self.to.is_empty(), &[Kind::Email, Kind::Sms])?;
        only("to_groups", !self.to_groups.is_empty(), &[Kind::Email, Kind::Sms])?;
        only("sms", self.sms.is_some(), &[Kind::Sms])?;
        for (field, value) in [("subject", &self.subject), ("text", &self.text), ("html", &self.html)] {
            only(field, value.is_some(), &[Kind::Email])?;
        }
        only("content_type", self.content_type.is_some(), &[Kind::Webhook])?;
        only("headers", !self.headers.is_empty(), &[Kind::Webhook])?;
        only("secrets", self.secrets.is_some(), &[Kind::Webhook])?;
        match self.kind {
            Kind::Email => self.check_recipients(|to| {
                to.parse::<lettre::message::Mailbox>()
                    .map(drop)
                    .map_err(|e| format!("`{to}` is not an email address: {e}"))
            })?,
            Kind::Sms => {
                self.check_recipients(crate::recipients::check_phone)?;
                let sms = self.sms.as_ref().ok_or_else(|| invalid("sms", "is required for an SMS channel"))?;
                sms.check(policy)?;
            }
            Kind::Plugin => {
                let plugin =
                    self.plugin.as_deref().ok_or_else(|| invalid("plugin", "is required for a plugin channel"))?;
                crate::rules::condition::name("plugin", plugin)?;
                if !matches!(self.config, None | Some(Value::Object(_))) {
                    return Err(invalid("config", "must be a JSON object"));
                }
                if self.allow_hosts.is_empty() || self.allow_hosts.len() > MAX_ALLOWED_HOSTS {
                    return Err(invalid(
                        "allow_hosts",
                        format!("give 1 to {MAX_ALLOWED_HOSTS} hosts the plugin may send to"),
                    ));
                }
                for (i, host) in self.allow_hosts.iter().enumerate() {
                    let at = format!("allow_hosts[{i}]");
                    let plain =
                        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
                    if !plain {
                        return Err(invalid(at, format!("`{host}` is not a host name (no scheme, port or path)")));
                    }
                    policy.check_url(&format!("https://{host}/")).map_err(|message| invalid(at, message))?;
                }
            }
            _ => {
                let url = self.url.as_deref().ok_or_else(|| invalid("url", "is required for this kind of channel"))?;
                policy.check_url(url).map_err(|message| invalid("url", message))?;
            }
        }
        if let Some(content_type) = &self.content_type
            && content_type.parse::<axum::http::HeaderValue>().is_err()
        {
            return Err(invalid("content_type", "is not a valid header value"));
        }
        self.check_headers()?;
        if let Some(secrets) = &self.secrets {
            if secrets.is_empty() || secrets.len() > MAX_SECRETS {
                return Err(invalid("secrets", format!("give 1 to {MAX_SECRETS} secrets, or leave it out")));
            }
            for (i, secret) in secrets.iter().enumerate() {
                signing::decode_secret(secret).map_err(|message| invalid(format!("secrets[{i}]"), message))?;
            }
        }
        if let Some(plugin) = &self.template_plugin {
            crate::rules::condition::name("template_plugin", plugin)?;
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return Err(invalid("max_in_flight", format!("must be 1 to {MAX_IN_FLIGHT}")));
        }
        if let Some(rate) = self.rate_per_second
            && !(rate > 0.0 && rate <= MAX_RATE)
        {
            return Err(invalid("rate_per_second", format!("must be above 0 and at most {MAX_RATE}")));
        }
        self.noise().check()?;
        for (field, template) in self.templates() {
            if template.len() > MAX_TEMPLATE_BYTES {
                return Err(invalid(field, format!("a template may be at most {MAX_TEMPLATE_BYTES} bytes")));
            }
        }
        if self.template_plugin.is_none() && self.kind != Kind::Plugin {
            render::check(self)?;
        }
        Ok(())
    }

    /// The channel with its templates and template plugin left out: the built-in payloads.
    pub fn built_in(&self) -> ChannelSpec {
        ChannelSpec {
            body: None,
            content_type: None,
            headers: BTreeMap::new(),
            subject: None,
            text: None,
            html: None,
            template_plugin: None,
            ..self.clone()
        }
    }

    pub fn noise(&self) -> Noise {
        Noise {
            quiet_hours: self.quiet_hours.clone(),
            digest: self.digest.clone(),
            group_by: self.group_by.clone(),
            group_wait: self.group_wait,
            active_during: self.active_during.clone(),
            outside: self.outside,
        }
    }

    /// An email or SMS channel may name no address of its own when subscriptions give it their
    /// groups; a message with no address at all is refused at its attempt.
    fn check_recipients(&self, address: impl Fn(&str) -> Result<(), String>) -> Result<(), Invalid> {
        if self.to.len() > MAX_RECIPIENTS {
            return Err(invalid("to", format!("at most {MAX_RECIPIENTS} recipients")));
        }
        if self.to_groups.len() > MAX_RECIPIENTS {
            return Err(invalid("to_groups", format!("at most {MAX_RECIPIENTS} groups")));
        }
        for group in &self.to_groups {
            crate::recipients::check_group("to_groups", group)?;
        }
        for (i, to) in self.to.iter().enumerate() {
            address(to).map_err(|message| invalid(format!("to[{i}]"), message))?;
        }
        Ok(())
    }

    fn check_headers(&self) -> Result<(), Invalid> {
        if self.headers.len() > MAX_HEADERS {
            return Err(invalid("headers", format!("at most {MAX_HEADERS} headers")));
        }
        for name in self.headers.keys() {
            let field = format!("headers.{name}");
            if name.parse::<axum::http::HeaderName>().is_err() {
                return Err(invalid(field, "is not a valid header name"));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(invalid(field, "is set by Klaxon itself"));
            }
        }
        Ok(())
    }

    /// Every template of the channel, with the field that holds it.
    pub fn templates(&self) -> Vec<(String, &str)> {
        let mut all: Vec<(String, &str)> = [("body", &self.body), ("subject", &self.subject), ("text", &self.text)]
            .into_iter()
            .chain([("html", &self.html)])
            .filter_map(|(field, t)| t.as_deref().map(|t| (field.to_string(), t)))
            .collect();
        all.extend(self.headers.iter().map(|(name, t)| (format!("headers.{name}"), t.as_str())));
        all
    }
}

impl SmsProvider {
    fn check(&self, policy: &AddressPolicy) -> Result<(), Invalid> {
        policy.check_url(&self.base_url).map_err(|message| invalid("sms.base_url", message))?;
        let sid = |field: &str, value: &str| {
            if value.is_empty() || value.len() > MAX_SID_BYTES || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(field, format!("must be 1 to {MAX_SID_BYTES} letters and digits")));
            }
            Ok(())
        };
        sid("sms.account_sid", &self.account_sid)?;
        match (&self.from, &self.messaging_service_sid) {
            (Some(from), None) => crate::recipients::check_phone(from).map_err(|m| invalid("sms.from", m))?,
            (None, Some(service)) => sid("sms.messaging_service_sid", service)?,
            _ => return Err(invalid("sms.from", "give either `from` (a number) or `messaging_service_sid`")),
        }
        if let Some(token) = &self.auth_token
            && (token.trim().is_empty() || token.len() > MAX_TOKEN_BYTES)
        {
            return Err(invalid("sms.auth_token", format!("must be 1 to {MAX_TOKEN_BYTES} bytes")));
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct Channels {
    store: Store,
}

impl Channels {
    pub fn new(store: Store) -> Self {
        Channels { store }
    }

    pub fn create(&self, tenant: &str, created_by: &str, spec: ChannelSpec, now: Timestamp) -> StoreResult<Channel> {
        let channel = Channel::new(created_by, spec, now);
        self.put(tenant, &channel)?;
        Ok(channel)
    }

    pub fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Channel>> {
        self.store.channels.get(tenant, id)
    }

    pub fn list(&self, tenant: &str) -> StoreResult<Vec<Channel>> {
        self.store.channels.list(tenant)
    }

    /// Replaces the spec; secrets given replace the old ones, else they are kept (a webhook
    /// that had none gets one).
    pub fn replace(
        &self,
        tenant: &str,
        mut channel: Channel,
        mut spec: ChannelSpec,
        now: Timestamp,
    ) -> StoreResult<Channel> {
        match spec.sms.as_mut().and_then(|sms| sms.auth_token.take()) {
            Some(given) => channel.auth_token = Some(given),
            None if spec.kind != Kind::Sms => channel.auth_token = None,
            None => {}
        }
        match (spec.kind, spec.secret_config.take()) {
            (Kind::Plugin, Some(given)) => channel.secret_config = given,
            (Kind::Plugin, None) => {}
            _ => channel.secret_config.clear(),
        }
        match (spec.kind, spec.secrets.take()) {
            (Kind::Webhook, Some(given)) => {
                channel.secrets = given.into_iter().map(|secret| Secret::new(secret, now)).collect();
            }
            (Kind::Webhook, None) if channel.secrets.is_empty() => {
                channel.secrets = vec![Secret::new(signing::new_secret(), now)];
            }
            (Kind::Webhook, None) => {}
            _ => channel.secrets.clear(),
        }
        if spec.enabled {
            channel.disabled_reason = None;
            channel.failing_since = None;
        }
        channel.spec = spec;
        channel.updated_at = now;
        self.put(tenant, &channel)?;
        Ok(channel)
    }

    /// A new secret signs from now on; the others stay valid for `overlap`, so receivers can
    /// switch without dropping a message.
    pub fn rotate(
        &self,
        tenant: &str,
        mut channel: Channel,
        overlap: jiff::SignedDuration,
        now: Timestamp,
    ) -> StoreResult<Channel> {
        let until = now.saturating_add(overlap).expect("a bounded overlap");
        channel.secrets.retain(|s| s.active(now));
        for secret in &mut channel.secrets {
            secret.expires_at = Some(secret.expires_at.map_or(until, |at| at.min(until)));
        }
        channel.secrets.insert(0, Secret::new(signing::new_secret(), now));
        channel.secrets.truncate(MAX_SECRETS);
        channel.updated_at = now;
        self.put(tenant, &channel)?;
        Ok(channel)
    }

    pub fn put(&self, tenant: &str, channel: &Channel) -> StoreResult<()> {
        self.store.channels.put(tenant, &channel.id, channel)
    }

    /// Changes a stored channel atomically; answers it when `change` said it changed.
    pub fn update(
        &self,
        tenant: &str,
        id: &str,
        change: impl Fn(&mut Channel) -> bool,
    ) -> StoreResult<Option<Channel>> {
        self.store.channels.update(tenant, id, change)
    }

    pub fn delete(&self, tenant: &str, id: &str) -> StoreResult<()> {
        self.store.channels.delete(tenant, id)?;
        Ok(())
    }
}
