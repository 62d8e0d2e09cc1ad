//! Roles: named lists of permissions. A permission reads `resource:action[:own]`, `*` standing
//! for any resource or action; `:own` limits it to objects the key itself made. The four
//! built-in roles are written the same way, so one check serves every key.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What the API holds, as permissions name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Rules,
    Channels,
    Subscriptions,
    Silences,
    TimeIntervals,
    Incidents,
    Recipients,
    Categories,
    Cohorts,
    Customers,
    CustomerTokens,
    Events,
    EventTypes,
    Plugins,
    Notifications,
    StatusPage,
    Portal,
    Keys,
    Roles,
    /// The audit trail of changes.
    Audit,
}

impl Resource {
    pub const ALL: [Resource; 20] = [
        Resource::Rules,
        Resource::Channels,
        Resource::Subscriptions,
        Resource::Silences,
        Resource::TimeIntervals,
        Resource::Incidents,
        Resource::Recipients,
        Resource::Categories,
        Resource::Cohorts,
        Resource::Customers,
        Resource::CustomerTokens,
        Resource::Events,
        Resource::EventTypes,
        Resource::Plugins,
        Resource::Notifications,
        Resource::StatusPage,
        Resource::Portal,
        Resource::Keys,
        Resource::Roles,
        Resource::Audit,
    ];

    /// Whether each of its objects records the key that made it, so `:own` can apply.
    pub fn owned(self) -> bool {
        matches!(
            self,
            Resource::Rules
                | Resource::Channels
                | Resource::Subscriptions
                | Resource::Silences
                | Resource::TimeIntervals
                | Resource::Recipients
                | Resource::Cohorts
                | Resource::Plugins
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Resource::Rules => "rules",
            Resource::Channels => "channels",
            Resource::Subscriptions => "subscriptions",
            Resource::Silences => "silences",
            Resource::TimeIntervals => "time-intervals",
            Resource::Incidents => "incidents",
            Resource::Recipients => "recipients",
            Resource::Categories => "categories",
            Resource::Cohorts => "cohorts",
            Resource::Customers => "customers",
            Resource::CustomerTokens => "customer-tokens",
            Resource::Events => "events",
            Resource::EventTypes => "event-types",
            Resource::Plugins => "plugins",
            Resource::Notifications => "notifications",
            Resource::StatusPage => "status-page",
            Resource::Portal => "portal",
            Resource::Keys => "keys",
            Resource::Roles => "roles",
            Resource::Audit => "audit",
        }
    }
}

/// What a caller does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    /// Sends something on trial (a channel's or subscription's test, a plugin's dry run).
    Test,
    /// Sends a notification again.
    Resend,
}

impl Action {
    pub const ALL: [Action; 6] =
        [Action::Read, Action::Create, Action::Update, Action::Delete, Action::Test, Action::Resend];

    pub fn name(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Test => "test",
            Action::Resend => "resend",
        }
    }
}

/// What one operation of the API needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub resource: Resource,
    pub action: Action,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource.name(), self.action.name())
    }
}

/// One granted permission, as a role lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `None` is `*`.
    resource: Option<Resource>,
    action: Option<Action>,
    own: bool,
}

impl FromStr for Grant {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (resource, action, own) = match parts[..] {
            ["*"] => ("*", "*", false),
            [resource, action] => (resource, action, false),
            [resource, action, "own"] => (resource, action, true),
            _ => return Err(format!("`{text}` is not `resource:action` or `resource:action:own`")),
        };
        let resource = named(text, resource, "resource", &Resource::ALL, |r| r.name())?;
        let action = named(text, action, "action", &Action::ALL, |a| a.name())?;
        if own {
            if let Some(resource) = resource.filter(|r: &Resource| !r.owned()) {
                return Err(format!(
                    "`{text}`: {} are not made by keys, so `:own` cannot apply to them",
                    resource.name()
                ));
            }
            if action == Some(Action::Read) {
                return Err(format!("`{text}`: `:own` limits changes; reading is granted whole"));
            }
        }
        Ok(Grant { resource, action, own })
    }
}

/// The one of `all` called `word` (`None` for `*`), or the error naming what there is.
fn named<T: Copy>(
    text: &str,
    word: &str,
    kind: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<Option<T>, String> {
    if word == "*" {
        return Ok(None);
    }
    all.iter().copied().find(|item| name(*item) == word).map(Some).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|item| name(*item)).collect();
        format!("`{text}`: there is no {kind} `{word}`; {kind}s are {}", names.join(", "))
    })
}

impl Grant {
    /// How far this grant reaches for `permission`.
    fn reach(&self, permission: Permission) -> Option<Reach> {
        let resource = self.resource.is_none_or(|r| r == permission.resource);
        let action = self.action.is_none_or(|a| a == permission.action);
        if !(resource && action) {
            return None;
        }
        if !self.own {
            return Some(Reach::All);
        }
        // `:own` reaches only what keys make, and never reading.
        (permission.resource.owned() && permission.action != Action::Read).then_some(Reach::Own)
    }
}

/// How far a key's role lets it act on one kind of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Objects its own key made.
    Own,
    /// Every object of its tenant.
    All,
}

/// What a role grants, parsed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions(Vec<Grant>);

impl Permissions {
    /// Parses a role's list; the error names the position of the first bad entry.
    pub fn parse(list: &[String]) -> Result<Self, (usize, String)> {
        list.iter()
            .enumerate()
            .map(|(i, text)| text.parse().map_err(|e| (i, e)))
            .collect::<Result<_, _>>()
            .map(Permissions)
    }

    /// The widest reach any grant gives for `permission`; `None` when none does.
    pub fn reach(&self, permission: Permission) -> Option<Reach> {
        self.0.iter().filter_map(|grant| grant.reach(permission)).max_by_key(|reach| *reach == Reach::All)
    }

    /// Every permission granted, as `{resource: {action: "all" | "own"}}`: what the console
    /// shows and hides.
    pub fn table(&self) -> BTreeMap<&'static str, BTreeMap<&'static str, &'static str>> {
        let mut table: BTreeMap<_, BTreeMap<_, _>> = BTreeMap::new();
        for resource in Resource::ALL {
            for action in Action::ALL {
                if let Some(reach) = self.reach(Permission { resource, action }) {
                    let reach = if reach == Reach::All { "all" } else { "own" };
                    table.entry(resource.name()).or_default().insert(action.name(), reach);
                }
            }
        }
        table
    }

    /// The first permission `other` grants further than these do, if any: a key may not hand
    /// out more than it holds.
    pub fn first_beyond(&self, other: &Permissions) -> Option<Permission> {
        let wider = |theirs: Option<Reach>, ours: Option<Reach>| {
            !matches!((theirs, ours), (None, _) | (Some(Reach::Own), Some(_)) | (Some(Reach::All), Some(Reach::All)))
        };
        Resource::ALL
            .iter()
            .flat_map(|&resource| Action::ALL.iter().map(move |&action| Permission { resource, action }))
            .find(|&permission| wider(other.reach(permission), self.reach(permission)))
    }
}

/// The built-in role that may do everything; a tenant keeps at least one key with it.
pub const ADMIN: &str = "admin";

/// The roles every tenant has, which cannot be changed: name, description, permissions.
pub const BUILT_IN: &[(&str, &str, &[&str])] = &[
    (ADMIN, "Everything in the tenant, including others' objects, keys and roles.", &["*"]),
    (
        "editor",
        "Reads everything but keys and roles; creates rules, channels, subscriptions, silences, \
         recipients, cohorts and plugins, and changes its own.",
        &[
            "rules:read",
            "rules:create",
            "rules:update:own",
            "rules:delete:own",
            "rules:test",
            "channels:read",
            "channels:create",
            "channels:update:own",
            "channels:delete:own",
            "channels:test",
            "subscriptions:read",
            "subscriptions:create",
            "subscriptions:update:own",
            "subscriptions:delete:own",
            "subscriptions:test",
            "silences:read",
            "silences:create",
            "silences:delete:own",
            "time-intervals:read",
            "time-intervals:create",
            "time-intervals:update:own",
            "time-intervals:delete:own",
            "recipients:read",
            "recipients:create",
            "recipients:update:own",
            "recipients:delete:own",
            "cohorts:read",
            "cohorts:create",
            "cohorts:update:own",
            "cohorts:delete:own",
            "plugins:read",
            "plugins:create",
            "plugins:update:own",
            "plugins:delete:own",
            "plugins:test",
            "incidents:read",
            "incidents:create",
            "incidents:update",
            "categories:read",
            "categories:update",
            "categories:delete",
            "status-page:read",
            "status-page:update",
            "notifications:read",
            "notifications:resend",
            "customers:read",
            "event-types:read",
        ],
    ),
    (
        "viewer",
        "Reads everything but keys and roles.",
        &[
            "rules:read",
            "channels:read",
            "subscriptions:read",
            "silences:read",
            "time-intervals:read",
            "recipients:read",
            "cohorts:read",
            "plugins:read",
            "incidents:read",
            "categories:read",
            "status-page:read",
            "notifications:read",
            "customers:read",
            "event-types:read",
        ],
    ),
    ("ingest", "Sends events and customers, nothing else.", &["events:create", "customers:update", "customers:delete"]),
];

/// The role a customer token has: its own rules and channels, its notifications, and the
/// tenant's event types to pick from. What it sees is its own only (`TenantKey::sees`).
pub const CUSTOMER: &str = "customer";

const CUSTOMER_PERMISSIONS: &[&str] = &[
    "rules:read",
    "rules:create",
    "rules:update:own",
    "rules:delete:own",
    "channels:read",
    "channels:create",
    "channels:update:own",
    "channels:delete:own",
    "channels:test:own",
    "notifications:read",
    "event-types:read",
];

/// What a customer token grants.
pub fn customer() -> Permissions {
    parse_static(CUSTOMER_PERMISSIONS)
}

/// A built-in role's permissions, by name.
pub fn built_in(name: &str) -> Option<Permissions> {
    BUILT_IN.iter().find(|(n, ..)| *n == name).map(|(_, _, list)| parse_static(list))
}

fn parse_static(list: &[&str]) -> Permissions {
    let list: Vec<String> = list.iter().map(|p| p.to_string()).collect();
    Permissions::parse(&list).expect("built-in permissions parse")
}

/// A role a tenant admin defined.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<String>,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
}

/// A role as the API shows it, built-in or defined.
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    /// Built-in roles cannot be changed or deleted.
    pub built_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<jiff::Timestamp>,
}

impl RoleView {
    pub fn built_in() -> impl Iterator<Item = RoleView> {
        BUILT_IN.iter().map(|(name, description, list)| RoleView {
            name: name.to_string(),
            description: description.to_string(),
            permissions: list.iter().map(|p| p.to_string()).collect(),
            built_in: true,
            created_at: None,
            updated_at: None,
        })
    }
}

impl From<&Role> for RoleView {
    fn from(role: &Role) -> Self {
        RoleView {
            name: role.name.clone(),
            description: role.description.clone(),
            permissions: role.permissions.clone(),
            built_in: false,
            created_at: Some(role.created_at),
            updated_at: Some(role.updated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(resource: Resource, action: Action) -> Permission {
        Permission { resource, action }
    }

    fn list(items: &[&str]) -> Permissions {
        Permissions::parse(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn wildcards_and_own_reach_what_they_say() {
        let role = list(&["subscriptions:*:own", "*:read", "notifications:resend"]);
        assert_eq!(role.reach(p(Resource::Subscriptions, Action::Update)), Some(Reach::Own));
        assert_eq!(role.reach(p(Resource::Subscriptions, Action::Read)), Some(Reach::All));
        assert_eq!(role.reach(p(Resource::Keys, Action::Read)), Some(Reach::All));
        assert_eq!(role.reach(p(Resource::Rules, Action::Create)), None);
        assert_eq!(role.reach(p(Resource::Notifications, Action::Resend)), Some(Reach::All));
        // `*:*:own` reaches nothing that keys do not make.
        let own = list(&["*:*:own"]);
        assert_eq!(own.reach(p(Resource::Categories, Action::Update)), None);
        assert_eq!(own.reach(p(Resource::Rules, Action::Delete)), Some(Reach::Own));
        assert_eq!(own.reach(p(Resource::Rules, Action::Read)), None);
        // The whole grant wins over the own one.
        assert_eq!(
            list(&["rules:update:own", "rules:update"]).reach(p(Resource::Rules, Action::Update)),
            Some(Reach::All)
        );
        assert_eq!(list(&["*"]).reach(p(Resource::Roles, Action::Delete)), Some(Reach::All));
    }

    #[test]
    fn a_bad_permission_is_named() {
        let bad = |text: &str| Permissions::parse(&["rules:read".into(), text.into()]).unwrap_err();
        assert_eq!(bad("rule:read").0, 1);
        assert!(bad("rule:read").1.contains("no resource `rule`"), "{}", bad("rule:read").1);
        assert!(bad("rules:write").1.contains("no action `write`"));
        assert!(bad("categories:update:own").1.contains("cannot apply"));
        assert!(bad("rules:read:own").1.contains("reading is granted whole"));
        assert!(bad("rules").1.contains("is not `resource:action`"));
        assert!(bad("rules:read:mine").1.contains("is not"));
    }

    #[test]
    fn the_built_in_roles_keep_their_meaning() {
        let editor = built_in("editor").unwrap();
        assert_eq!(editor.reach(p(Resource::Rules, Action::Update)), Some(Reach::Own));
        assert_eq!(editor.reach(p(Resource::Keys, Action::Read)), None);
        assert_eq!(editor.reach(p(Resource::Events, Action::Create)), None);
        let viewer = built_in("viewer").unwrap();
        assert_eq!(viewer.reach(p(Resource::Rules, Action::Read)), Some(Reach::All));
        assert_eq!(viewer.reach(p(Resource::Rules, Action::Create)), None);
        let ingest = built_in("ingest").unwrap();
        assert_eq!(ingest.reach(p(Resource::Events, Action::Create)), Some(Reach::All));
        assert_eq!(ingest.reach(p(Resource::Rules, Action::Read)), None);
        assert!(built_in("support").is_none());
    }

    #[test]
    fn a_role_beyond_another_names_the_first_permission_it_adds() {
        let editor = built_in("editor").unwrap();
        assert_eq!(built_in("admin").unwrap().first_beyond(&editor), None);
        assert_eq!(editor.first_beyond(&built_in("viewer").unwrap()), None);
        assert_eq!(editor.first_beyond(&list(&["rules:update"])), Some(p(Resource::Rules, Action::Update)));
        assert_eq!(editor.first_beyond(&list(&["keys:read"])), Some(p(Resource::Keys, Action::Read)));
        assert_eq!(editor.first_beyond(&list(&["rules:delete:own"])), None);
    }
}
