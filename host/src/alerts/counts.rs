//! How many of a rule's alerts stand in each state, kept up to date in the transactions that
//! change them, so a list of rules shows its counts without reading every alert.

use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;

use super::state::stored;
use crate::context::AlertState;
use crate::store::{self, StoreResult, TxResult, keys};

/// One alert's move: the state it was in (none: it is new) and the state it is in (none: it is
/// gone).
pub type Move = (Option<AlertState>, Option<AlertState>);

/// A rule's alerts by state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub evaluating: u64,
    pub ok: u64,
    pub in_alarm: u64,
}

impl StateCounts {
    fn slot(&mut self, state: AlertState) -> &mut u64 {
        match state {
            AlertState::Evaluating => &mut self.evaluating,
            AlertState::Ok => &mut self.ok,
            AlertState::InAlarm => &mut self.in_alarm,
        }
    }

    /// One alert moved from `before` (none: it is new) to `after` (none: it is gone).
    pub fn moved(&mut self, before: Option<AlertState>, after: Option<AlertState>) {
        if before == after {
            return;
        }
        if let Some(state) = before {
            let slot = self.slot(state);
            *slot = slot.saturating_sub(1);
        }
        if let Some(state) = after {
            *self.slot(state) += 1;
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
        by_rule.entry(keys::rule_prefix(tenant, rule)).or_default().moved(None, Some(record.state));
    }
    for (key, counted) in by_rule {
        counts.insert(key, serde_json::to_vec(&counted).expect("counts serialize"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_takes_one_from_the_old_state_and_gives_it_to_the_new() {
        let mut counts = StateCounts::default();
        counts.moved(None, Some(AlertState::Evaluating));
        counts.moved(None, Some(AlertState::Evaluating));
        counts.moved(Some(AlertState::Evaluating), Some(AlertState::InAlarm));
        counts.moved(Some(AlertState::Ok), Some(AlertState::Ok));
        assert_eq!(counts, StateCounts { evaluating: 1, ok: 0, in_alarm: 1 });
        counts.moved(Some(AlertState::InAlarm), None);
        assert_eq!(counts, StateCounts { evaluating: 1, ok: 0, in_alarm: 0 });
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
        assert_eq!(read(&counts, "t", "r1").unwrap(), StateCounts { evaluating: 0, ok: 1, in_alarm: 2 });
        assert_eq!(read(&counts, "t", "r2").unwrap(), StateCounts { evaluating: 0, ok: 1, in_alarm: 0 });
        assert_eq!(read(&counts, "t", "r3").unwrap(), StateCounts::default());

        // Counts kept since are not counted over again.
        alerts.remove(keys::alert("t", "r2", "a")).unwrap();
        rebuild_if_missing(&alerts, &counts).unwrap();
        assert_eq!(read(&counts, "t", "r2").unwrap().ok, 1);
    }
}
