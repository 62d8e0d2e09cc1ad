//! Tenants, their API keys and roles, console sessions, and who a bearer token belongs to.

pub mod buckets;
pub mod customer_tokens;
pub mod keys;
mod known;
mod limits;
pub mod roles;
mod sessions;
mod usage;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreResult};
pub use customer_tokens::{Claims, Portal};
pub use keys::ApiKey;
pub use limits::{LimitOverrides, PluginLimits};
pub use roles::{Action, Permission, Permissions, Reach, Resource, Role, RoleView};
pub use sessions::Session;
pub use usage::{UsageLimits, UsageOverrides};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: jiff::Timestamp,
    /// Ceilings for every plugin call of this tenant.
    pub plugin_limits: PluginLimits,
    /// What it may use, where not the configuration's (`usage`).
    #[serde(default, skip_serializing_if = "UsageOverrides::is_empty")]
    pub limits: UsageOverrides,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    PlatformAdmin,
    Tenant(TenantKey),
}

/// A tenant API key that was presented and checked.
#[derive(Debug, Clone)]
pub struct TenantKey {
    pub tenant_id: String,
    pub key_id: String,
    /// The role's name.
    pub role: String,
    pub permissions: Arc<Permissions>,
    /// Set for a customer's token: the customer, and what it may do beyond its permissions.
    pub customer: Option<Arc<Claims>>,
}

impl TenantKey {
    /// Whether this caller sees an object made by `owner`: a customer sees only its own.
    pub fn sees(&self, owner: &str) -> bool {
        self.customer.is_none() || self.key_id == owner
    }

    /// How far this key's role lets it go with `permission`, or the refusal naming it.
    pub fn check(&self, permission: Permission) -> Result<Reach, Forbidden> {
        self.permissions
            .reach(permission)
            .ok_or_else(|| Forbidden(format!("the role `{}` lacks the permission `{permission}`", self.role)))
    }

    /// Whether this key may do `action` to an object of `resource` made by `owner` (a key
    /// id), or the refusal: `what` names the object (`this rule`, ``plugin `x` ``).
    pub fn check_may(&self, resource: Resource, action: Action, owner: &str, what: &str) -> Result<(), Forbidden> {
        let permission = Permission { resource, action };
        match self.check(permission)? {
            Reach::Own if self.key_id != owner => Err(Forbidden(format!(
                "{what} was made by another key; the role `{}` has `{permission}` only for its own \
                 (`{permission}:own`)",
                self.role
            ))),
            _ => Ok(()),
        }
    }
}

/// A key's role does not allow what it asked for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Forbidden(pub String);

/// A key as its creator sees it once, with the token.
#[derive(Debug, Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: KeyView,
    pub token: String,
}

/// A key as listed: everything but the secret.
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: jiff::Timestamp,
}

impl From<&ApiKey> for KeyView {
    fn from(key: &ApiKey) -> Self {
        KeyView { id: key.id.clone(), name: key.name.clone(), role: key.role.clone(), created_at: key.created_at }
    }
}

/// The id of a tenant's one portal record.
const PORTAL: &str = "portal";

/// Tenant and key records, and authentication.
#[derive(Clone)]
pub struct Tenants {
    store: Store,
    admin_token_sha256: String,
    known: std::sync::Arc<known::KnownKeys>,
}

impl Tenants {
    pub fn new(store: Store, admin_token: &str) -> Self {
        Tenants { store, admin_token_sha256: keys::sha256_hex(admin_token), known: Default::default() }
    }

    /// Creates a tenant and its first admin key.
    pub fn create(
        &self,
        name: String,
        plugin_limits: PluginLimits,
        now: jiff::Timestamp,
    ) -> StoreResult<(Tenant, CreatedKey)> {
        let tenant = Tenant {
            id: crate::ids::new_id("ten"),
            name,
            created_at: now,
            plugin_limits,
            limits: UsageOverrides::default(),
        };
        self.store.tenants.put(&tenant.id, &tenant)?;
        let key = self.create_key(&tenant.id, "initial admin key".into(), roles::ADMIN.into(), now)?;
        Ok((tenant, key))
    }

    pub fn get(&self, id: &str) -> StoreResult<Option<Tenant>> {
        self.store.tenants.get(id)
    }

    pub fn list(&self) -> StoreResult<Vec<Tenant>> {
        self.store.tenants.list()
    }

    pub fn put(&self, tenant: &Tenant) -> StoreResult<()> {
        self.store.tenants.put(&tenant.id, tenant)
    }

    pub fn create_key(
        &self,
        tenant_id: &str,
        name: String,
        role: String,
        now: jiff::Timestamp,
    ) -> StoreResult<CreatedKey> {
        let secret = keys::new_secret();
        let key = ApiKey {
            id: crate::ids::new_id("key"),
            tenant_id: tenant_id.to_string(),
            name,
            role,
            secret_sha256: keys::sha256_hex(&secret),
            created_at: now,
        };
        self.store.api_keys.put(&key.id, &key)?;
        Ok(CreatedKey { key: KeyView::from(&key), token: keys::token(&key.id, &secret) })
    }

    pub fn list_keys(&self, tenant_id: &str) -> StoreResult<Vec<ApiKey>> {
        let all: Vec<ApiKey> = self.store.api_keys.list()?;
        Ok(all.into_iter().filter(|k| k.tenant_id == tenant_id).collect())
    }

    pub fn get_key(&self, tenant_id: &str, key_id: &str) -> StoreResult<Option<ApiKey>> {
        Ok(self.store.api_keys.get::<ApiKey>(key_id)?.filter(|k| k.tenant_id == tenant_id))
    }

    /// Deletes a key; it authenticates nothing from then on.
    pub fn delete_key(&self, key_id: &str) -> StoreResult<()> {
        self.store.api_keys.delete(key_id)?;
        self.known.forget(|key| key.key_id == key_id);
        Ok(())
    }

    /// What `role` grants in `tenant`: a built-in role's permissions or the tenant's own role's;
    /// nothing for a role that is not there.
    pub fn permissions(&self, tenant: &str, role: &str) -> StoreResult<Permissions> {
        if let Some(permissions) = roles::built_in(role) {
            return Ok(permissions);
        }
        let defined: Option<Role> = self.store.roles.get(tenant, role)?;
        Ok(defined.and_then(|role| Permissions::parse(&role.permissions).ok()).unwrap_or_default())
    }

    /// The built-in roles, then the tenant's own in name order.
    pub fn roles(&self, tenant: &str) -> StoreResult<Vec<RoleView>> {
        let defined: Vec<Role> = self.store.roles.list(tenant)?;
        Ok(RoleView::built_in().chain(defined.iter().map(RoleView::from)).collect())
    }

    /// A role the tenant defined.
    pub fn role(&self, tenant: &str, name: &str) -> StoreResult<Option<Role>> {
        self.store.roles.get(tenant, name)
    }

    /// Saves a tenant's role; its keys are checked against the new permissions from now on.
    pub fn put_role(&self, tenant: &str, role: &Role) -> StoreResult<()> {
        self.store.roles.put(tenant, &role.name, role)?;
        self.forget(tenant);
        Ok(())
    }

    /// Deletes a tenant's role (the caller made sure no key has it).
    pub fn delete_role(&self, tenant: &str, name: &str) -> StoreResult<()> {
        self.store.roles.delete(tenant, name)?;
        self.forget(tenant);
        Ok(())
    }

    /// The tenant's portal, made (with its signing key) the first time it is asked for.
    pub fn portal(&self, tenant: &str, now: jiff::Timestamp) -> StoreResult<Portal> {
        if let Some(portal) = self.portal_if_any(tenant)? {
            return Ok(portal);
        }
        let portal = Portal::new(now);
        self.put_portal(tenant, &portal)?;
        Ok(portal)
    }

    /// The tenant's portal, if it has one yet.
    pub fn portal_if_any(&self, tenant: &str) -> StoreResult<Option<Portal>> {
        self.store.portals.get(tenant, PORTAL)
    }

    pub fn put_portal(&self, tenant: &str, portal: &Portal) -> StoreResult<()> {
        self.store.portals.put(tenant, PORTAL, portal)
    }

    /// Forgets the keys of `tenant` kept in memory (another node changed them).
    pub fn forget(&self, tenant: &str) {
        self.known.forget(|key| key.tenant_id == tenant);
    }

    /// Deletes a tenant and everything it owns (`Store::delete_tenant`); its keys authenticate
    /// nothing from then on. `false` when there is no such tenant.
    pub fn delete(&self, id: &str) -> StoreResult<bool> {
        let deleted = self.store.delete_tenant(id)?;
        self.known.forget(|key| key.tenant_id == id);
        Ok(deleted)
    }
}
