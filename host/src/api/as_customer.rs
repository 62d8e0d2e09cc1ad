//! What a customer's token may save, beyond what a tenant key may: rules about that customer
//! only, of the kinds its token allows, on the tenant's event types, notifying its own channels;
//! webhook and email channels without the tenant's recipients or plugins.

use axum::http::{HeaderMap, StatusCode};

use super::AppState;
use super::extract::origin;
use crate::channels::{Channel, ChannelSpec, Kind};
use crate::error::{ApiError, ApiResult};
use crate::rules::{RuleSpec, Scope};
use crate::tenants::TenantKey;

/// Refuses a rule a customer may not save; `new` when it would be one more of its rules.
pub fn check_rule(state: &AppState, key: &TenantKey, spec: &RuleSpec, new: bool) -> ApiResult<()> {
    let Some(claims) = &key.customer else { return Ok(()) };
    let ours = matches!(&spec.scope, Scope::Customer { customer_id } if *customer_id == claims.customer_id);
    if !ours {
        return Err(ApiError::field(
            "scope",
            format!(
                r#"a customer's rule is about that customer only: {{"type": "customer", "customer_id": "{}"}}"#,
                claims.customer_id
            ),
        ));
    }
    let kind = spec.condition.kind();
    if !claims.allowed.iter().any(|allowed| allowed == kind) {
        return Err(ApiError::field(
            "condition.kind",
            format!("this token allows only these kinds of rule: {}", claims.allowed.join(", ")),
        ));
    }
    if spec.category.is_some() {
        return Err(ApiError::field(
            "category",
            "a customer's rule notifies its own channels, not the tenant's subscribers",
        ));
    }
    if spec.incident {
        return Err(ApiError::field("incident", "a customer's rule cannot open the tenant's incidents"));
    }
    let known = state.ingest.event_types(&key.tenant_id)?;
    for (at, event_type) in spec.condition.event_types() {
        if !known.items.iter().any(|seen| seen.name == event_type) {
            return Err(ApiError::field(
                at,
                format!("`{event_type}` is not one of the event types this service sends"),
            ));
        }
    }
    for (i, id) in spec.channels.iter().enumerate() {
        let own = state.channels.get(&key.tenant_id, id)?.is_some_and(|channel| key.sees(&channel.created_by));
        if !own {
            return Err(ApiError::field(format!("channels[{i}]"), format!("there is no channel `{id}`")));
        }
    }
    if new {
        let count = state.rules.list(&key.tenant_id)?.iter().filter(|rule| rule.created_by == key.key_id).count();
        if count >= claims.max_rules as usize {
            return Err(ApiError::Described {
                status: StatusCode::FORBIDDEN,
                code: "limit_reached",
                message: format!("this customer has {count} rules, the most its token allows (max_rules)"),
                limit: Some("max_rules"),
            });
        }
    }
    Ok(())
}

/// Mails a confirmation link to each address of a customer's email channel that has none yet,
/// and keeps what was asked with the channel. An address whose mail fails stays pending; saving
/// the channel again without it and then with it asks again.
pub async fn ask_confirmations(
    state: &AppState,
    tenant: &str,
    channel: &mut Channel,
    headers: &HeaderMap,
) -> ApiResult<()> {
    if !channel.needs_confirmation() && channel.confirmations.is_empty() {
        return Ok(());
    }
    let asked = channel.ask_confirmations();
    state.channels.put(tenant, channel)?;
    state.store.flush().await?;
    let base = origin(headers).unwrap_or_default();
    let service = state.tenants.get(tenant)?.map(|t| t.name).unwrap_or_default();
    for (address, secret) in asked {
        let link = format!("{base}/portal/confirm?tenant={tenant}&channel={}&token={secret}", channel.id);
        let text = format!(
            "Alerts from {service} were asked to be sent to {address}.\n\nTo receive them, confirm: {link}\n\n\
             If you did not ask for this, ignore this message: nothing will be sent to you."
        );
        let sent = state.deliverer.senders().mail(&address, &format!("Confirm alerts from {service}"), &text).await;
        if let Some(error) = sent.error {
            tracing::warn!(tenant, channel = %channel.id, %error, "a confirmation link could not be mailed");
        }
    }
    Ok(())
}

/// Refuses a channel a customer may not save.
pub fn check_channel(key: &TenantKey, spec: &ChannelSpec) -> ApiResult<()> {
    if key.customer.is_none() {
        return Ok(());
    }
    if !matches!(spec.kind, Kind::Webhook | Kind::Email) {
        return Err(ApiError::field("kind", "a customer's channel is a webhook or an email"));
    }
    if !spec.to_groups.is_empty() {
        return Err(ApiError::field("to_groups", "a customer's channel cannot reach the tenant's recipients"));
    }
    if spec.template_plugin.is_some() {
        return Err(ApiError::field("template_plugin", "a customer's channel cannot use the tenant's plugins"));
    }
    Ok(())
}
