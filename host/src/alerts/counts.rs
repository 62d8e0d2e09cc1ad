//! How many of a rule's alerts stand in each state (and how many are flapping), kept up to date
//! in the transactions that change them, so a list of rules shows its counts without reading
//! every alert.

use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;

use super::state::{AlertRecord, stored};
use crate::context::AlertState;
use crate::store::{self, StoreResult, TxResult, keys};

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

/// Applies `moves` to the counts of the rule in the transaction's tree.
pub fn apply(
    tree: &TransactionalTree,
    tenant: &str,
    rule: &str,
    moves: impl IntoIterator<Item = Move>,
) -> TxResult<()> {
    let key = keys::rule_prefix(tenant, rule);
    let mut counts: StateCounts = store::tx_get_json(tree, &key)?.unwrap_or_default();
    for (before, after) in moves {
        counts.moved(before, after);
    }
    store::tx_put_json(tree, &key, &counts)
}

/// The rule's counts (all zero for a rule with no alerts yet).
pub fn read(tree: &sled::Tree, tenant: &str, rule: &str) -> StoreResult<StateCounts> {
    let bytes = tree.get(keys::rule_prefix(tenant, rule))?;
    Ok(bytes.map(|b| store::decode("alert counts", &b)).transpose()?.unwrap_or_default())
}

/// Counts every alert again when there are alerts but no counts: a store written before the
/// counts were kept. Runs at start, before anything changes an alert.
pub fn rebuild_if_missing(alerts: &sled::Tree, counts: &sled::Tree) -> StoreResult<()> {
    if !counts.is_empty() || alerts.is_empty() {
        return Ok(());
    }
    let mut by_rule: std::collections::BTreeMap<Vec<u8>, StateCounts> = Default::default();
    for entry in alerts.iter() {
        let (key, bytes) = entry?;
        let (record, _) = stored::decode(&bytes).ok_or_else(|| store::corrupt(&key, "an alert"))?;
        let (tenant, rule, _) = keys::parse_alert(&key).ok_or_else(|| store::corrupt(&key, "an alert key"))?;
        by_rule.entry(keys::rule_prefix(tenant, rule)).or_default().moved(None, Some(Standing::of(&record)));
    }
    for (key, counted) in by_rule {
        counts.insert(key, serde_json::to_vec(&counted).expect("counts serialize"))?;
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
        let db = sled::Config::new().temporary(true).open().unwrap();
        let (alerts, counts) = (db.open_tree("alerts").unwrap(), db.open_tree("alert_counts").unwrap());
        let now = jiff::Timestamp::UNIX_EPOCH;
        for (rule, scope, state) in [
            ("r1", "a", AlertState::InAlarm),
            ("r1", "b", AlertState::Ok),
            ("r1", "c", AlertState::InAlarm),
            ("r2", "a", AlertState::Ok),
        ] {
            let record = AlertRecord { state, ..AlertRecord::new(now) };
            alerts.insert(keys::alert("t", rule, scope), stored::encode(&record, &Series::default())).unwrap();
        }
        rebuild_if_missing(&alerts, &counts).unwrap();
        assert_eq!(read(&counts, "t", "r1").unwrap(), StateCounts { ok: 1, in_alarm: 2, ..StateCounts::default() });
        assert_eq!(read(&counts, "t", "r2").unwrap(), StateCounts { ok: 1, ..StateCounts::default() });
        assert_eq!(read(&counts, "t", "r3").unwrap(), StateCounts::default());

        // Counts kept since are not counted over again.
        alerts.remove(keys::alert("t", "r2", "a")).unwrap();
        rebuild_if_missing(&alerts, &counts).unwrap();
        assert_eq!(read(&counts, "t", "r2").unwrap().ok, 1);
    }
}
