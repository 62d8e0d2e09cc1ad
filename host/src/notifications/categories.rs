//! Categories: what a notification is about (`infrastructure`, `billing`, `configuration`, and
//! the tenant's own), which subscriptions follow. The three built-in ones exist in every tenant
//! from the start; their descriptions can be edited, they cannot be deleted.

use serde::{Deserialize, Serialize};

use crate::error::{Invalid, invalid};
use crate::store::{Collection, StoreResult};

const BUILT_IN: [(&str, &str); 3] = [
    ("infrastructure", "Servers, networks and the services customers depend on"),
    ("billing", "Invoices, payments, credits, balances and usage charges"),
    ("configuration", "Klaxon's own configuration: channels, rules and plugins that need attention"),
];
const MAX_DESCRIPTION_BYTES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub built_in: bool,
}

/// What a client writes to `PUT /v1/categories/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategorySpec {
    #[serde(default)]
    pub description: String,
}

impl CategorySpec {
    pub fn check(&self) -> Result<(), Invalid> {
        if self.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(invalid("description", format!("at most {MAX_DESCRIPTION_BYTES} bytes")));
        }
        Ok(())
    }
}

/// A category name: 1 to 64 lowercase letters, digits, `-` and `_`.
pub fn check_name(at: &str, name: &str) -> Result<(), Invalid> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(invalid(at, format!("`{name}` is not a category name: 1 to 64 of a-z, 0-9, - and _"))) }
}

pub fn is_built_in(name: &str) -> bool {
    BUILT_IN.iter().any(|(n, _)| *n == name)
}

/// A built-in category as it is until the tenant edits it.
fn unedited((name, description): (&str, &str)) -> Category {
    Category { name: name.to_string(), description: description.to_string(), built_in: true }
}

/// Every category of the tenant, by name: the built-in ones (as edited) and its own.
pub fn list(store: &Collection, tenant: &str) -> StoreResult<Vec<Category>> {
    let mut all: Vec<Category> = store.list(tenant)?;
    for built_in in BUILT_IN {
        if !all.iter().any(|c| c.name == built_in.0) {
            all.push(unedited(built_in));
        }
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

/// One category: stored (the tenant's own, or an edited built-in one) or built in.
pub fn get(store: &Collection, tenant: &str, name: &str) -> StoreResult<Option<Category>> {
    match store.get(tenant, name)? {
        Some(category) => Ok(Some(category)),
        None => Ok(BUILT_IN.into_iter().find(|(n, _)| *n == name).map(unedited)),
    }
}

/// Creates the category or changes its description.
pub fn put(store: &Collection, tenant: &str, name: &str, spec: CategorySpec) -> StoreResult<Category> {
    let category = Category { name: name.to_string(), description: spec.description, built_in: is_built_in(name) };
    store.put(tenant, name, &category)?;
    Ok(category)
}
