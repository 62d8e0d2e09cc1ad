//! What a channel sends for a notification: its templates' payload, or its template plugin's,
//! addressed to its own recipients and the audience that routed the notification to it.

use std::sync::Arc;

use super::Channel;
use super::render::{self, Payload};
use crate::error::{Invalid, invalid};
use crate::plugins::{Plugins, RegistryError};
use crate::recipients::{self, Audience};
use crate::records::notification::Notification;
use crate::store::{Store, StoreError};
use crate::tenants::Tenants;

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
}
