//! A record a tenant's key created, with who made it and when.

use serde::{Deserialize, Serialize};

/// A record a tenant's key created: its spec as the client wrote it, and who made it when.
/// (Kept nested: a flattened spec could not refuse unknown fields; `view` shows it flat.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Owned<S> {
    pub id: String,
    pub spec: S,
    /// The key that created it: editors may change only their own.
    pub created_by: String,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
}

/// An `Owned` record as the API shows it: the spec's fields beside its own.
#[derive(Debug, Serialize)]
pub struct OwnedView<'a, S> {
    pub id: &'a str,
    #[serde(flatten)]
    pub spec: &'a S,
    pub created_by: &'a str,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
}

impl<S> Owned<S> {
    pub fn new(id: String, spec: S, created_by: &str, now: jiff::Timestamp) -> Self {
        Owned { id, spec, created_by: created_by.to_string(), created_at: now, updated_at: now }
    }

    pub fn view(&self) -> OwnedView<'_, S> {
        OwnedView {
            id: &self.id,
            spec: &self.spec,
            created_by: &self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
