//! Judging one customer against one cohort: counting its events into its track, deciding
//! whether it is a member now and when time alone may change that, and settling the answer
//! (the members index, the batches of the rules that listen, the timer).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::spec::{Count, Criterion};
use super::{Cohort, Status};
use crate::context::Member;
use crate::records::{CohortTrack, Customer, Event};
use crate::rules::CohortChange;
use crate::rules::all_pass;
use crate::rules::condition::Filter;
use crate::series::counts::Counts;
use crate::series::window::Span;
use crate::series::window::WindowSpec;
use crate::store::{Tx, TxResult};

/// A rule that reports a cohort's changes, and which changes.
#[derive(Debug, Clone)]
pub struct Listener {
    pub rule: String,
    pub on: Vec<CohortChange>,
}

/// A change waiting for a rule's next batch (one per customer: an entry and an exit within one
/// batch cancel out).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchEntry {
    pub change: CohortChange,
    pub member: Member,
}

/// A cohort ready to judge with.
pub struct Compiled {
    pub cohort: Cohort,
    criteria: Vec<Judged>,
    /// How many criteria count events (each has its counts in the track).
    slots: usize,
    /// Whether its filters read the customer's activity, which every event changes.
    filters_read_activity: bool,
}

enum Judged {
    /// `performed` (with its count) and `not_performed` (no count: none at all).
    Events { event_type: Option<String>, filters: Vec<Filter>, span: Span, count: Option<Count>, slot: usize },
    /// `first_seen` and `last_seen`.
    Seen { last: bool, window: SeenWindow, inside: bool },
}

enum SeenWindow {
    Calendar(Span),
    Rolling(SignedDuration),
}

impl Compiled {
    pub fn new(cohort: Cohort) -> Compiled {
        let tz = cohort.spec.timezone.clone();
        let mut slots = 0;
        let criteria = cohort
            .spec
            .criteria
            .iter()
            .map(|criterion| {
                let mut events = |event_type: &Option<String>, filters: &Vec<Filter>, count, within| {
                    slots += 1;
                    let span = Span::new(Some(within), &tz);
                    Judged::Events {
                        event_type: event_type.clone(),
                        filters: filters.clone(),
                        span,
                        count,
                        slot: slots - 1,
                    }
                };
                match criterion {
                    Criterion::Performed { event_type, filters, count, within } => {
                        events(event_type, filters, Some(*count), within)
                    }
                    Criterion::NotPerformed { event_type, filters, within } => {
                        events(event_type, filters, None, within)
                    }
                    Criterion::FirstSeen { within, not_within } | Criterion::LastSeen { within, not_within } => {
                        let last = matches!(criterion, Criterion::LastSeen { .. });
                        let (spec, inside) = match (within, not_within) {
                            (Some(w), _) => (*w, true),
                            (None, Some(w)) => (*w, false),
                            (None, None) => unreachable!("checked at save time"),
                        };
                        let window = match spec {
                            WindowSpec::Rolling(d) => SeenWindow::Rolling(d.0),
                            calendar => SeenWindow::Calendar(Span::new(Some(&calendar), &tz)),
                        };
                        Judged::Seen { last, window, inside }
                    }
                }
            })
            .collect();
        let filters_read_activity = cohort.spec.filters.iter().any(|f| {
            let field = f.field.trim_start_matches("customer.");
            crate::records::RESERVED_FIELDS.iter().any(|kept| field == *kept || field.starts_with(&format!("{kept}.")))
        });
        Compiled { cohort, criteria, slots, filters_read_activity }
    }

    /// A track's counts before any event: empty counts per criterion that counts events.
    pub fn empty_counts(&self) -> Vec<Counts> {
        vec![Counts::default(); self.slots]
    }

    /// The windows of the criteria that count events.
    pub fn spans(&self) -> impl Iterator<Item = &Span> {
        self.criteria.iter().filter_map(|c| match c {
            Judged::Events { span, .. } => Some(span),
            Judged::Seen { .. } => None,
        })
    }

    pub fn id(&self) -> &str {
        &self.cohort.id
    }

    /// Whether an event of this type can change what the cohort knows of its customer.
    pub fn counts_type(&self, event_type: &str) -> bool {
        self.filters_read_activity
            || self.criteria.iter().any(|c| match c {
                Judged::Events { event_type: wanted, .. } => wanted.as_deref().is_none_or(|t| t == event_type),
                Judged::Seen { .. } => true,
            })
    }

    /// The customer's track for this cohort's definition (a fresh one for a new definition).
    pub fn track<'c>(&self, customer: &'c mut Customer) -> &'c mut CohortTrack {
        customer
            .cohorts
            .entry(self.cohort.version)
            .or_insert_with(|| CohortTrack { counts: self.empty_counts(), ..CohortTrack::default() })
    }

    /// What `event` adds, per criterion that counts events: the slot and the bucket.
    pub fn samples<'a>(&'a self, event: &'a Event, now: Timestamp) -> impl Iterator<Item = (usize, i64, i64)> + 'a {
        self.criteria.iter().filter_map(move |c| match c {
            Judged::Events { event_type, filters, span, slot, .. }
                if event_type.as_deref().is_none_or(|t| t == event.event_type)
                    && all_pass(filters, Some(event), &EMPTY) =>
            {
                Some((*slot, span.bucket(event.timestamp), span.current(now).first))
            }
            _ => None,
        })
    }

    /// Counts a tenant event of the customer into its track.
    pub fn count(&self, customer: &mut Customer, event: &Event, now: Timestamp) {
        let track = self.track(customer);
        for (slot, bucket, oldest) in self.samples(event, now) {
            track.counts[slot].add(bucket, oldest);
        }
    }

    /// Whether the customer is a member at `now`, and the next time time alone may change that.
    pub fn judge(&self, customer: &Customer, track: &CohortTrack, now: Timestamp) -> (bool, Option<Timestamp>) {
        let mut member = all_pass(&self.cohort.spec.filters, None, customer);
        let mut next: Option<Timestamp> = None;
        for criterion in &self.criteria {
            let (holds, change) = match criterion {
                Judged::Events { span, count, slot, .. } => events(span, count, &track.counts[*slot], customer, now),
                Judged::Seen { last, window, inside } => {
                    let seen = if *last { customer.activity.last_seen } else { customer.activity.first_seen };
                    seen_in(window, *inside, seen, customer.created_at, now)
                }
            };
            member &= holds;
            next = [next, change].into_iter().flatten().min();
        }
        (member, next)
    }

    /// Judges the customer (once its past is counted in) and settles the answer. `listeners`
    /// get the change in their next batch.
    pub fn settle(
        &self,
        tx: &Tx,
        tenant: &str,
        customer: &mut Customer,
        now: Timestamp,
        listeners: &[Listener],
    ) -> TxResult<()> {
        let track = self.track(customer);
        if !(track.counted_past || self.cohort.status == Status::Ready) {
            return Ok(());
        }
        let (member, due) = self.judge(customer, &customer.cohorts[&self.cohort.version], now);
        self.apply(tx, tenant, customer, member, due, now, listeners)
    }

    /// Writes a judgment: membership (and the batches of `listeners` when it changed), and the
    /// timer for `due`. A timer already set earlier than `due` is kept: it re-judges then, and
    /// sets the next one, so a busy customer does not move its timer with every event.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        tx: &Tx,
        tenant: &str,
        customer: &mut Customer,
        member: bool,
        due: Option<Timestamp>,
        now: Timestamp,
        listeners: &[Listener],
    ) -> TxResult<()> {
        let was_member = self.track(customer).member_since.is_some();
        if was_member != member {
            let change = if member {
                tx.add_cohort_member(tenant, &self.cohort.id, &customer.id, now)?;
                CohortChange::Entered
            } else {
                tx.remove_cohort_member(tenant, &self.cohort.id, &customer.id)?;
                CohortChange::Exited
            };
            let snapshot = Member {
                id: customer.id.clone(),
                name: customer.name.clone(),
                fields: customer.fields.clone(),
                at: now,
            };
            record(tx, tenant, listeners, change, snapshot)?;
            self.track(customer).member_since = member.then_some(now);
        }
        let track = self.track(customer);
        let set = track.due.filter(|at| *at > now);
        let keep = match (set, due) {
            (Some(set), Some(due)) => set <= due,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !keep {
            if let Some(set) = set {
                tx.clear_timer(set, tenant, &self.cohort.id, &customer.id)?;
            }
            if let Some(due) = due {
                tx.set_timer(due, tenant, &self.cohort.id, &customer.id, "")?;
            }
            self.track(customer).due = due;
        }
        Ok(())
    }
}

/// Filters of `performed` read only the event (checked at save time).
static EMPTY: std::sync::LazyLock<Customer> = std::sync::LazyLock::new(|| Customer::blank("", Timestamp::UNIX_EPOCH));

/// Adds a change to each listener's batch. An opposite change already waiting cancels it.
fn record(tx: &Tx, tenant: &str, listeners: &[Listener], change: CohortChange, member: Member) -> TxResult<()> {
    for listener in listeners {
        match tx.cohort_change::<BatchEntry>(tenant, &listener.rule, &member.id)? {
            Some(waiting) if waiting.change != change => {
                tx.take_cohort_change::<BatchEntry>(tenant, &listener.rule, &member.id)?;
            }
            _ if listener.on.contains(&change) => {
                tx.put_cohort_change(
                    tenant,
                    &listener.rule,
                    &member.id,
                    &BatchEntry { change, member: member.clone() },
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A `performed` / `not_performed` criterion: whether it holds, and when the count leaving the
/// window would first change that.
fn events(
    span: &Span,
    count: &Option<Count>,
    counts: &Counts,
    customer: &Customer,
    now: Timestamp,
) -> (bool, Option<Timestamp>) {
    let period = span.current(now);
    let test = |n: u64| match count {
        Some(Count { op, value }) => op.holds(n.cmp(value)),
        None => n == 0,
    };
    // A customer younger than the window has not been quiet for all of it.
    let existed = customer.created_at <= period.window.start;
    let guard = |holds: bool| holds && (count.is_some() || existed);
    let total = counts.total(period.first, period.last);
    let holds = guard(test(total));
    let next = match span {
        Span::Calendar { .. } => (test(0) != test(total) || !existed).then_some(period.window.end),
        Span::Rolling { slice, slices } => {
            let leaves = |bucket: i64| Timestamp::from_second(bucket + slices * slice).ok();
            let mut left = total;
            let emptied =
                counts.buckets().filter(|(b, _)| *b >= period.first && *b <= period.last).find_map(|(b, n)| {
                    left -= n;
                    (test(left) != test(total)).then(|| leaves(b)).flatten()
                });
            let grown_up = (!existed).then(|| {
                let start = customer.created_at.as_second();
                let first_full =
                    start.div_euclid(*slice) * slice + if start.rem_euclid(*slice) == 0 { 0 } else { *slice };
                Timestamp::from_second(first_full + (slices - 1) * slice).ok()
            });
            [emptied, grown_up.flatten()].into_iter().flatten().min()
        }
        Span::Ever => None,
    };
    (holds, next)
}

/// A `first_seen` / `last_seen` criterion at `now`: whether it holds, and when it may change.
fn seen_in(
    window: &SeenWindow,
    inside: bool,
    seen: Option<Timestamp>,
    created: Timestamp,
    now: Timestamp,
) -> (bool, Option<Timestamp>) {
    let (start, end) = match window {
        SeenWindow::Calendar(span) => {
            let period = span.current(now);
            (period.window.start, period.window.end)
        }
        SeenWindow::Rolling(d) => (now - *d, Timestamp::MAX),
    };
    let within = seen.is_some_and(|t| t >= start && t < end);
    // When `within` turns false again: the calendar window ends, or the duration passes.
    let until = |t: Timestamp| match window {
        SeenWindow::Calendar(_) => end,
        SeenWindow::Rolling(d) => t + *d,
    };
    if inside {
        return (within, seen.filter(|_| within).map(until));
    }
    // Never seen: "not within" once the customer has existed for the whole window.
    let existed = seen.is_some() || created <= start;
    let next = if within {
        seen.map(until)
    } else if existed {
        None
    } else {
        Some(until(created))
    };
    (!within && existed, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::condition::Op;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn seen_windows_hold_and_say_when_they_change() {
        let day = SeenWindow::Calendar(Span::new(
            Some(&WindowSpec::Calendar(crate::series::window::CalendarUnit::Day)),
            "UTC",
        ));
        let created = at("2030-01-01T00:00:00Z");
        let now = at("2030-01-07T10:00:00Z");
        // First seen today: in until midnight.
        assert_eq!(
            seen_in(&day, true, Some(at("2030-01-07T09:00:00Z")), created, now),
            (true, Some(at("2030-01-08T00:00:00Z")))
        );
        assert_eq!(seen_in(&day, true, Some(at("2030-01-06T09:00:00Z")), created, now), (false, None));
        let three_days = SeenWindow::Rolling(SignedDuration::from_hours(72));
        // Last seen not within 3 days: out while recent, in 3 days after the last event.
        let last = at("2030-01-06T00:00:00Z");
        assert_eq!(seen_in(&three_days, false, Some(last), created, now), (false, Some(at("2030-01-09T00:00:00Z"))));
        // Never seen: in once the customer has existed for 3 days.
        let young = at("2030-01-06T00:00:00Z");
        assert_eq!(seen_in(&three_days, false, None, young, now), (false, Some(at("2030-01-09T00:00:00Z"))));
        assert_eq!(seen_in(&three_days, false, None, created, now), (true, None));
    }

    #[test]
    fn counts_change_membership_when_their_buckets_leave_the_window() {
        let span =
            Span::new(Some(&WindowSpec::Rolling(crate::duration::Duration(SignedDuration::from_hours(1)))), "UTC");
        let now = at("2030-01-07T10:30:00Z");
        let customer = Customer::blank("c", at("2030-01-01T00:00:00Z"));
        let mut counts = Counts::default();
        let oldest = span.current(now).first;
        counts.add(span.bucket(at("2030-01-07T10:00:00Z")), oldest);
        counts.add(span.bucket(at("2030-01-07T10:20:00Z")), oldest);
        let at_least_two = Some(Count { op: Op::AtLeast, value: 2 });
        // Two in the last hour: in until the first leaves at 11:00 (slices of a minute).
        assert_eq!(events(&span, &at_least_two, &counts, &customer, now), (true, Some(at("2030-01-07T11:00:00Z"))));
        // None at all: out until the last one leaves at 11:20.
        assert_eq!(events(&span, &None, &counts, &customer, now), (false, Some(at("2030-01-07T11:20:00Z"))));
        assert_eq!(events(&span, &None, &Counts::default(), &customer, now), (true, None));
    }
}
