//! Cohorts: saved, dynamic customer lists defined by customer-field filters and behaviour
//! (`performed`, `not_performed`, `first_seen`, `last_seen`). Membership is kept incrementally
//! in each customer's record: an event, a change to the customer or a timer re-judges only that
//! customer (`judge`). A new or changed definition is computed in the background from the stored
//! customers and events (`compute`), without announcing that first membership.

mod compute;
mod judge;
pub mod spec;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::ids::new_id;
use crate::records::Customer;
use crate::store::{Store, StoreResult};
pub use judge::{BatchEntry, Compiled, Listener};
pub use spec::CohortSpec;

/// Whether a cohort's membership is known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Its first membership is being computed from the stored customers and events.
    Computing,
    Ready,
}

/// A stored cohort.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cohort {
    pub id: String,
    pub spec: CohortSpec,
    /// Taken when the definition was saved: events of ingest batches numbered below it are
    /// counted by the computation, the later ones by ingest.
    pub version: u64,
    pub status: Status,
    /// The key that created it: editors may change only their own cohorts.
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the membership of this definition was computed.
    #[serde(default)]
    pub computed_at: Option<Timestamp>,
}

/// A cohort as the API shows it.
#[derive(Debug, Serialize)]
pub struct CohortView<'a> {
    pub id: &'a str,
    #[serde(flatten)]
    pub spec: &'a CohortSpec,
    pub status: Status,
    pub computed_at: Option<Timestamp>,
    /// How many customers are members (absent in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
    pub created_by: &'a str,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Cohort {
    pub fn view(&self, members: Option<usize>) -> CohortView<'_> {
        CohortView {
            id: &self.id,
            spec: &self.spec,
            status: self.status,
            computed_at: self.computed_at,
            members,
            created_by: &self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A member, as `GET /v1/cohorts/{id}/members` lists it.
#[derive(Debug, Serialize)]
pub struct MemberView {
    pub customer_id: String,
    pub name: Option<String>,
    pub entered_at: Timestamp,
}

/// A customer's cohort, as `GET /v1/customers/{id}/cohorts` lists it.
#[derive(Debug, Serialize)]
pub struct Membership {
    pub cohort_id: String,
    pub name: String,
    pub entered_at: Timestamp,
}

/// A tenant's cohorts, ready to judge with.
#[derive(Default)]
pub struct TenantCohorts {
    pub all: Vec<Arc<Compiled>>,
}

impl TenantCohorts {
    pub fn get(&self, id: &str) -> Option<&Arc<Compiled>> {
        self.all.iter().find(|c| c.id() == id)
    }

    /// Drops the customer's tracks of deleted cohorts and replaced definitions.
    pub fn drop_stale_tracks(&self, customer: &mut Customer) {
        customer.cohorts.retain(|version, _| self.all.iter().any(|c| c.cohort.version == *version));
    }
}

pub struct Cohorts {
    store: Store,
    clock: SharedClock,
    /// How long events are kept: no window may reach further back.
    pub retention: SignedDuration,
    cache: RwLock<HashMap<String, Arc<TenantCohorts>>>,
    /// The computations under way on this node, by tenant and cohort.
    computing: Mutex<HashSet<(String, String)>>,
}

impl Cohorts {
    pub fn new(store: Store, clock: SharedClock, retention: SignedDuration) -> Self {
        Cohorts { store, clock, retention, cache: RwLock::default(), computing: Mutex::default() }
    }

    /// The tenant's cohorts, loaded once and kept until one of them changes.
    pub fn tenant(&self, tenant: &str) -> StoreResult<Arc<TenantCohorts>> {
        if let Some(cohorts) = self.cache.read().expect("cohort cache lock").get(tenant) {
            return Ok(cohorts.clone());
        }
        self.reload(tenant)
    }

    /// Reads the tenant's cohorts into the cache, under its write lock so an older list never
    /// replaces a newer one.
    fn reload(&self, tenant: &str) -> StoreResult<Arc<TenantCohorts>> {
        let mut cache = self.cache.write().expect("cohort cache lock");
        let all = self.list(tenant)?.into_iter().map(|c| Arc::new(Compiled::new(c))).collect();
        let cohorts = Arc::new(TenantCohorts { all });
        cache.insert(tenant.to_string(), cohorts.clone());
        Ok(cohorts)
    }

    pub fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Cohort>> {
        self.store.cohorts.get(tenant, id)
    }

    pub fn list(&self, tenant: &str) -> StoreResult<Vec<Cohort>> {
        self.store.cohorts.list(tenant)
    }

    /// Saves a new definition (a new cohort when `existing` is none), to be computed. The
    /// caller holds the tenant's ingest turn and passes a `version` taken under it, so every
    /// ingest batch is either before the definition (counted by the computation) or after it
    /// (counted by ingest).
    pub fn save(
        &self,
        tenant: &str,
        created_by: &str,
        existing: Option<Cohort>,
        spec: CohortSpec,
        version: u64,
    ) -> StoreResult<Cohort> {
        let now = self.clock.now();
        let cohort = match existing {
            Some(old) => Cohort { spec, version, status: Status::Computing, computed_at: None, updated_at: now, ..old },
            None => Cohort {
                id: new_id("coh"),
                spec,
                version,
                status: Status::Computing,
                created_by: created_by.to_string(),
                created_at: now,
                updated_at: now,
                computed_at: None,
            },
        };
        // The old definition's members go with it, silently.
        self.store.replace_cohort(tenant, &cohort.id, Some(&cohort))?;
        self.reload(tenant)?;
        Ok(cohort)
    }

    /// Removes a cohort and its members (tracks in customer records are dropped as they are
    /// next written; timers lapse on their own).
    pub fn delete(&self, tenant: &str, id: &str) -> StoreResult<()> {
        self.store.replace_cohort::<Cohort>(tenant, id, None)?;
        self.reload(tenant).map(|_| ())
    }

    /// Forgets the cached cohorts of a deleted tenant.
    pub fn forget_tenant(&self, tenant: &str) {
        self.cache.write().expect("cohort cache lock").remove(tenant);
    }

    /// How many members a cohort has.
    pub fn member_count(&self, tenant: &str, id: &str) -> usize {
        self.store.cohort_member_count(tenant, id)
    }

    /// Up to `limit` members in customer id order, after the customer `after`.
    pub fn members(&self, tenant: &str, id: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<MemberView>> {
        let mut page = Vec::new();
        for (customer_id, entered_at) in self.store.cohort_members(tenant, id, after, limit)? {
            let customer: Option<Customer> = self.store.customer(tenant, &customer_id)?;
            page.push(MemberView { name: customer.and_then(|c| c.name), customer_id, entered_at });
        }
        Ok(page)
    }

    /// The cohorts a customer is a member of.
    pub fn memberships(&self, tenant: &str, customer: &Customer) -> StoreResult<Vec<Membership>> {
        let cohorts = self.tenant(tenant)?;
        Ok(cohorts
            .all
            .iter()
            .filter_map(|compiled| {
                let cohort = &compiled.cohort;
                let entered_at = customer.cohorts.get(&cohort.version)?.member_since?;
                Some(Membership { cohort_id: cohort.id.clone(), name: cohort.spec.name.clone(), entered_at })
            })
            .collect())
    }
}
