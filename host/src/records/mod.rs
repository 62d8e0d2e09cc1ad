//! The records that travel between the stages (ingest, alerts, cohorts, notifications,
//! delivery): customers with their activity, events, notifications, and Klaxon's own system
//! events. They sit below every stage, so each stage can read them without importing another.

mod customer;
mod event;
pub mod notification;
mod owned;
pub mod stats;
pub mod system;
mod track;

pub use customer::{Activity, Customer, RESERVED_FIELDS, TypeActivity};
pub use event::Event;
pub use owned::{Owned, OwnedView};
pub use track::CohortTrack;

/// The key of a tenant's customer or event.
pub fn key(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}
