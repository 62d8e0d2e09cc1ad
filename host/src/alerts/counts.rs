//! How many of a rule's alerts stand in each state (and how many are flapping), kept up to date
//! in the transactions that change them, so a list of rules shows its counts without reading
//! every alert.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::state::{AlertRecord, stored};
use crate::context::AlertState;
use crate::store::{self, Store, StoreResult, Tx, TxResult};

/// What the counts count of one alert: its state, and whether it is flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub state: AlertState,
    pub flapping: bool,
}

impl Standing {
    pub fn of(record: &AlertRecord) -> Self {
        Standing { state: record.state, flapping: record.flapping.is_some() }
    }
}

/// One alert's move: where it stood (none: it is new) and where it stands (none: it is gone).
pub type Move = (Option<Standing>, Option<Standing>);

/// A rule's alerts by state, and those of them flapping.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub evaluating: u64,
    pub ok: u64,
    #[serde(default)]
    pub pending: u64,
    pub in_alarm: u64,
    #[serde(default)]
    pub flapping: u64,
}

impl StateCounts {
    fn slots(&mut self, standing: Standing) -> impl Iterator<Item = &mut u64> {
        let Self { evaluating, ok, pending, in_alarm, flapping } = self;
        let state = match standing.state {
            AlertState::Evaluating => evaluating,
            AlertState::Ok => ok,
            AlertState::Pending => pending,
            AlertState::InAlarm => in_alarm,
        };
        std::iter::once(state).chain(standing.flapping.then_some(flapping))
    }

    /// One alert moved from `before` (none: it is new) to `after` (none: it is gone).
    pub fn moved(&mut self, before: Option<Standing>, after: Option<Standing>) {
        if before == after {
            return;
        }
        if let Some(standing) = before {
            self.slots(standing).for_each(|slot| *slot = slot.saturating_sub(1));
        }
        if let Some(standing) = after {
            self.slots(standing).for_each(|slot| *slot += 1);
        }
    }
}

/// Applies `moves`, made at `now`, to the counts of the rule in the transaction's tree, and
/// tallies the change of its alerts in alarm for the stats.
pub fn apply(tx: &Tx, tenant: &str, rule: &str, now: Timestamp, moves: impl IntoIterator<Item = Move>) -> TxResult<()> {
    let mut counts: StateCounts = tx.alert_counts(tenant, rule)?.unwrap_or_default();
    let in_alarm_before = counts.in_alarm;
    for (before, after) in moves {
        counts.moved(before, after);
    }
    let change = counts.in_alarm as i64 - in_alarm_before as i64;
    if change != 0 {
        tx.tally(tenant, now, |minute| minute.alarms_changed(rule, change));
    }
    tx.put_alert_counts(tenant, rule, &counts)
}

/// Counts every alert again when there are alerts but no counts: a store written before the
/// counts were kept. Runs at start, before anything changes an alert.
pub fn rebuild_if_missing(store: &Store) -> StoreResult<()> {
    if !store.alert_counts_missing()? {
        return Ok(());
    }
    let mut by_rule: std::collections::BTreeMap<(String, String), StateCounts> = Default::default();
    for alert in store.every_alert() {
        let (tenant, rule, bytes) = alert?;
        let (record, _) =
            stored::decode(&bytes).ok_or_else(|| store::corrupt(format!("{tenant}/{rule}"), "an alert"))?;
        by_rule.entry((tenant, rule)).or_default().moved(None, Some(Standing::of(&record)));
    }
    for ((tenant, rule), counted) in by_rule {
        store.put_alert_counts(&tenant, &rule, &counted)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(state: AlertState) -> Option<Standing> {
        Some(Standing { state, flapping: false })
    }

    #[test]
    fn a_move_takes_one_from_the_old_state_and_gives_it_to_the_new() {
        let mut counts = StateCounts::default();
        counts.moved(None, at(AlertState::Evaluating));
        counts.moved(None, at(AlertState::Evaluating));
        counts.moved(at(AlertState::Evaluating), at(AlertState::InAlarm));
        counts.moved(at(AlertState::Ok), at(AlertState::Ok));
        assert_eq!(counts, StateCounts { evaluating: 1, in_alarm: 1, ..StateCounts::default() });
        counts.moved(at(AlertState::InAlarm), None);
        assert_eq!(counts, StateCounts { evaluating: 1, ..StateCounts::default() });
        let flapping = Some(Standing { state: AlertState::Pending, flapping: true });
        counts.moved(at(AlertState::Evaluating), flapping);
        assert_eq!(counts, StateCounts { pending: 1, flapping: 1, ..StateCounts::default() });
        counts.moved(flapping, at(AlertState::Ok));
        assert_eq!(counts, StateCounts { ok: 1, ..StateCounts::default() });
    }

    #[test]
    fn a_store_without_counts_gets_them_from_its_alerts_once() {
        use super::super::state::AlertRecord;
        use crate::series::aggregate::Series;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let read = |rule: &str| store.alert_counts::<StateCounts>("t", rule).unwrap().unwrap_or_default();
        let now = jiff::Timestamp::UNIX_EPOCH;
        let alerts = [
            ("r1", "a", AlertState::InAlarm),
            ("r1", "b", AlertState::Ok),
            ("r1", "c", AlertState::InAlarm),
            ("r2", "a", AlertState::Ok),
        ];
        store
            .transact(|tx| {
                for (rule, scope, state) in alerts {
                    let record = AlertRecord { state, ..AlertRecord::new(now) };
                    tx.put_alert("t", rule, scope, stored::encode(&record, &Series::default()))?;
                }
                Ok(())
            })
            .unwrap();
        rebuild_if_missing(&store).unwrap();
        assert_eq!(read("r1"), StateCounts { ok: 1, in_alarm: 2, ..StateCounts::default() });
        assert_eq!(read("r2"), StateCounts { ok: 1, ..StateCounts::default() });
        assert_eq!(read("r3"), StateCounts::default());

        // Counts kept since are not counted over again.
        store.transact(|tx| tx.delete_alert("t", "r2", "a")).unwrap();
        rebuild_if_missing(&store).unwrap();
        assert_eq!(read("r2").ok, 1);
    }
}
