//! What a channel sends for a notification: its templates' payload, or its template plugin's,
//! addressed to its own recipients and the audience that routed the notification to it.

use std::sync::Arc;

use super::render::{self, Payload, Request};
use super::{Channel, Kind};
use crate::error::{Invalid, invalid};
use crate::plugins::io::{DeliveryOutcome, HttpResponse};
use crate::plugins::{Plugin, Plugins, RegistryError};
use crate::recipients::{self, Audience};
use crate::records::notification::Notification;
use crate::store::{Store, StoreError};
use crate::tenants::{Tenant, Tenants};

/// Why a payload could not be worked out (a payload the channel's templates cannot make is
/// an `Invalid` instead, naming the field at fault).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("tenant `{0}` not found")]
    NoTenant(String),
    #[error(transparent)]
    Plugin(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Renders channels' payloads.
pub struct Renderer {
    store: Store,
    tenants: Tenants,
    plugins: Arc<Plugins>,
}

impl Renderer {
    pub fn new(store: Store, tenants: Tenants, plugins: Arc<Plugins>) -> Self {
        Renderer { store, tenants, plugins }
    }

    /// What `channel` sends for `n` (to `audience` beyond its own addresses, for email and SMS): from
    /// its template plugin, or its templates.
    pub async fn render(
        &self,
        tenant: &str,
        channel: &Channel,
        n: &Notification,
        audience: &Audience,
    ) -> Result<Result<Payload, Invalid>, RenderError> {
        let mut payload = self.body(tenant, channel, n).await?;
        let mut everyone = audience.clone();
        everyone.groups.extend(channel.spec.to_groups.iter().cloned());
        let (to, reached) = match &mut payload {
            Ok(Payload::Email { to, .. }) => (to, recipients::emails(&self.store.recipients, tenant, &everyone)?),
            Ok(Payload::Sms { to, .. }) => (to, recipients::phones(&self.store.recipients, tenant, &everyone)?),
            _ => return Ok(payload),
        };
        for address in reached {
            if !to.contains(&address) {
                to.push(address);
            }
        }
        Ok(payload)
    }

    async fn body(
        &self,
        tenant: &str,
        channel: &Channel,
        n: &Notification,
    ) -> Result<Result<Payload, Invalid>, RenderError> {
        if channel.spec.kind == Kind::Plugin {
            return self.requests(tenant, channel, n).await;
        }
        let plugin = channel.spec.template_plugin.as_ref().filter(|_| n.kind.is_rule_kind());
        let Some(name) = plugin else { return Ok(render::render(&channel.spec, n)) };
        let at = "template_plugin";
        let tenant = self.tenants.get(tenant)?.ok_or_else(|| RenderError::NoTenant(tenant.to_string()))?;
        let Some(plugin) = self.plugins.get(&tenant.id, name)? else {
            return Ok(Err(invalid(at, format!("there is no plugin named `{name}`"))));
        };
        if !plugin.enabled {
            return Ok(Err(invalid(at, format!("plugin `{name}` is disabled"))));
        }
        let report = self.plugins.render(&tenant, &plugin, &n.context).await?;
        Ok(match report.result {
            Ok(out) => render::from_plugin(&channel.spec, n, out),
            Err(e) => Err(invalid(at, format!("plugin `{name}` failed: {e}"))),
        })
    }

    /// A plugin channel's requests for `n`, each to a host the channel allows.
    async fn requests(
        &self,
        tenant: &str,
        channel: &Channel,
        n: &Notification,
    ) -> Result<Result<Payload, Invalid>, RenderError> {
        let (tenant, plugin) = match self.channel_plugin(tenant, channel)? {
            Ok(found) => found,
            Err(refused) => return Ok(Err(refused)),
        };
        let (config, secrets) = (channel.plugin_config(), channel.secret_texts());
        let report = self.plugins.requests(&tenant, &plugin, &n.context, &config, &secrets).await?;
        let asked = match report.result {
            Ok(asked) => asked,
            Err(e) => {
                return Ok(Err(invalid("plugin", channel.redact(&format!("plugin `{}` failed: {e}", plugin.name)))));
            }
        };
        let mut requests = Vec::with_capacity(asked.len());
        for (i, request) in asked.into_iter().enumerate() {
            if let Err(message) = allowed(channel, &request.url) {
                return Ok(Err(invalid("allow_hosts", format!("request {i}: {message}"))));
            }
            let Ok(body) = String::from_utf8(request.body) else {
                return Ok(Err(invalid("plugin", format!("request {i}: the body is not UTF-8 text"))));
            };
            requests.push(Request { method: request.method, url: request.url, headers: request.headers, body });
        }
        if requests.is_empty() {
            return Ok(Err(invalid("plugin", "the plugin asked for no request")));
        }
        Ok(Ok(Payload::Requests { requests }))
    }

    /// What a plugin channel's plugin makes of the answer to its request `index`.
    pub async fn classify(
        &self,
        tenant: &str,
        channel: &Channel,
        index: u32,
        response: &HttpResponse,
    ) -> Result<DeliveryOutcome, String> {
        let (tenant, plugin) = match self.channel_plugin(tenant, channel) {
            Ok(Ok(found)) => found,
            Ok(Err(refused)) => return Err(refused.message),
            Err(e) => return Err(e.to_string()),
        };
        let config = channel.plugin_config();
        let secrets = channel.secret_texts();
        let report = self
            .plugins
            .classify(&tenant, &plugin, index, response, &config, &secrets)
            .await
            .map_err(|e| e.to_string())?;
        report.result.map_err(|e| channel.redact(&format!("plugin `{}` failed: {e}", plugin.name)))
    }

    /// The tenant and its enabled channel plugin the channel names.
    fn channel_plugin(
        &self,
        tenant: &str,
        channel: &Channel,
    ) -> Result<Result<(Tenant, Plugin), Invalid>, RenderError> {
        let tenant = self.tenants.get(tenant)?.ok_or_else(|| RenderError::NoTenant(tenant.to_string()))?;
        let name = channel.spec.plugin.as_deref().unwrap_or_default();
        let Some(plugin) = self.plugins.get(&tenant.id, name)? else {
            return Ok(Err(invalid("plugin", format!("there is no plugin named `{name}`"))));
        };
        if !plugin.enabled {
            return Ok(Err(invalid("plugin", format!("plugin `{name}` is disabled"))));
        }
        Ok(Ok((tenant, plugin)))
    }
}

/// `payload` as it may be shown: a plugin channel's requests with the channel's secrets
/// redacted.
pub fn shown(channel: &Channel, payload: Payload) -> Payload {
    match payload {
        Payload::Requests { requests } => Payload::Requests {
            requests: requests
                .into_iter()
                .map(|r| Request {
                    method: r.method,
                    url: channel.redact(&r.url),
                    headers: r.headers.into_iter().map(|(name, value)| (name, channel.redact(&value))).collect(),
                    body: channel.redact(&r.body),
                })
                .collect(),
        },
        other => other,
    }
}

/// Whether a plugin channel may send to `url`: an http(s) URL to one of the hosts it allows.
pub fn allowed(channel: &Channel, url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(format!("`{url}` is not an http(s) URL"));
    }
    let host = parsed.host_str().unwrap_or_default();
    if !channel.spec.allow_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(host)) {
        return Err(format!(
            "`{host}` is not among the hosts the channel allows ({})",
            channel.spec.allow_hosts.join(", ")
        ));
    }
    Ok(())
}
