//! The store's contracts, written once against its operations: what any backend must do. Each
//! runs on the embedded backend (in a temp folder) and on PostgreSQL (a database of its
//! own on the test binary's throwaway server).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Stage::{self, Recorded, Waiting};
use super::{DeliveryWrite, Kept, QueueEntry, Store, StoreError, abort, keys};
use crate::records::Event;

/// Runs each contract on every backend: `on_embedded::name` and `on_postgres::name`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod on_embedded {
            $(#[test]
            fn $name() {
                let dir = tempfile::tempdir().unwrap();
                super::$name(super::Store::open(dir.path(), 1 << 20).unwrap());
            })*
        }
        mod on_postgres {
            $(#[test]
            fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let url = klaxon_test_postgres::shared().database();
                super::$name(super::Store::connect(&url, 4, dir.path()).unwrap());
            })*
        }
    };
}

on_every_backend!(
    an_attempt_recorded_after_its_entry_left_the_queue_is_dropped,
    a_timer_is_taken_once,
    an_event_id_is_kept_once_per_tenant,
    a_transaction_that_fails_leaves_nothing_behind,
    the_queue_and_the_timers_come_out_in_due_order,
    a_delivery_waits_in_its_queue_entry_until_its_first_attempt_is_recorded,
    concurrent_changes_to_one_record_are_applied_one_after_the_other,
    pruning_removes_old_events_with_their_place_in_time,
    a_status_page_slug_belongs_to_one_tenant_at_a_time,
    a_change_and_the_system_event_it_reports_are_kept_together,
    a_check_finds_records_whose_owners_are_gone,
    the_events_and_customers_kept_are_counted_as_they_come_and_go,
);

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn event(id: &str, seconds: i64) -> Event {
    Event {
        id: id.to_string(),
        customer_id: Some("cus_1".into()),
        event_type: "api.call".into(),
        timestamp: at(seconds),
        properties: Default::default(),
        received_at: at(seconds),
    }
}

/// Keeps `event` unless its id was seen: answers whether it was new.
fn ingest(store: &Store, tenant: &str, event: &Event, batch: u64) -> bool {
    let json = serde_json::to_vec(event).unwrap();
    store
        .transact(|tx| {
            if tx.has_event(tenant, &event.id)? {
                return Ok(false);
            }
            tx.put_event(tenant, &event.id, event.timestamp, &json, batch.to_be_bytes())?;
            Ok(true)
        })
        .unwrap()
}

fn an_event_id_is_kept_once_per_tenant(store: Store) {
    assert!(ingest(&store, "t1", &event("e1", 0), 1));
    assert!(!ingest(&store, "t1", &event("e1", 5), 2), "a re-sent id changes nothing");
    assert!(ingest(&store, "t2", &event("e1", 0), 3), "another tenant's ids are its own");
    let kept: Vec<(u64, Event)> = store.events_since("t1", at(-10)).collect::<Result<_, _>>().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].0, kept[0].1.timestamp), (1, at(0)), "the first copy and its batch stay");
}

fn a_transaction_that_fails_leaves_nothing_behind(store: Store) {
    let json = serde_json::to_vec(&event("e1", 0)).unwrap();
    let failed = store.transact(|tx| {
        tx.put_event("t", "e1", at(0), &json, [0; 8])?;
        tx.put_customer("t", "cus_1", &json!({ "id": "cus_1" }))?;
        tx.set_timer(at(60), "t", "rule", "cus_1", "")?;
        tx.queue_delivery(at(0), "t", "ntf_1", "chn_1", &json!({ "status": "pending" }))?;
        Err::<(), _>(abort(StoreError::Shared("refused".into())))
    });
    assert!(failed.is_err());
    assert_eq!(store.events_since("t", at(-10)).count(), 0);
    assert_eq!(store.customer::<Value>("t", "cus_1").unwrap(), None);
    assert_eq!(store.next_timer(|_| true).unwrap(), None);
    assert_eq!(store.queue_from(None).count(), 0);
    assert_eq!(store.take_queued(), Some(Vec::new()), "the worker hears of nothing that was not kept");
}

fn the_queue_and_the_timers_come_out_in_due_order(store: Store) {
    store
        .transact(|tx| {
            for (seconds, channel) in [(30, "c"), (-5, "b"), (10, "a"), (10, "0")] {
                tx.queue_delivery(at(seconds), "t", "ntf", channel, &json!({}))?;
                tx.set_timer(at(seconds), "t", "rule", channel, "")?;
            }
            Ok(())
        })
        .unwrap();
    let queued: Vec<(Timestamp, String)> =
        store.queue_from(None).map(|e| e.map(|e| (e.due, e.channel))).collect::<Result<_, _>>().unwrap();
    let expected = [(at(-5), "b"), (at(10), "0"), (at(10), "a"), (at(30), "c")];
    assert_eq!(queued, expected.map(|(due, c)| (due, c.to_string())));
    let later: Vec<String> = store
        .queue_from(Some(&QueueEntry::first_at(at(10))))
        .map(|e| e.map(|e| e.channel))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(later, ["0", "a", "c"], "reading on from a time skips what fell due before it");
    let written = store.take_queued().unwrap();
    assert_eq!(written.len(), 4, "the worker hears of every entry a transaction wrote");
    assert_eq!(store.take_queued(), Some(Vec::new()), "and of each once");

    let first = store.next_timer(|_| true).unwrap().unwrap();
    assert_eq!((first.due, first.scope.as_str()), (at(-5), "b"));
    store.remove_timer(&first).unwrap();
    assert_eq!(store.next_timer(|_| true).unwrap().unwrap().due, at(10));
}

fn a_delivery_waits_in_its_queue_entry_until_its_first_attempt_is_recorded(store: Store) {
    let channels = ["chn_a".to_string(), "chn_b".to_string()];
    store
        .transact(|tx| {
            for channel in &channels {
                tx.queue_delivery(at(0), "t", "ntf", channel, &json!({ "channel": channel }))?;
            }
            Ok(())
        })
        .unwrap();
    let entry = store.take_queued().unwrap().remove(0);
    let delivery = |entry| -> Option<Stage<Value, Value>> { store.delivery(entry).unwrap() };
    assert_eq!(delivery(&entry), Some(Waiting(json!({ "channel": "chn_a" }))));
    let widened = store.transact(|tx| {
        tx.change_delivery(at(0), "t", "ntf", "chn_b", |d: Stage<&mut Value, &mut Value>| match d {
            Waiting(d) => {
                d["audience"] = json!(["ops"]);
                true
            }
            Recorded(_) => false,
        })
    });
    widened.unwrap();

    // The first attempt of chn_a: its record is written, its entry leaves, a retry is queued.
    let record = json!({ "channel": "chn_a", "attempts": 1 });
    let retry = DeliveryWrite {
        tenant: "t".into(),
        notification: "ntf".into(),
        channel: "chn_a".into(),
        json: serde_json::to_vec(&record).unwrap(),
        dequeue: Some(at(0)),
        enqueue: Some(at(60)),
        report: None,
    };
    store.save_deliveries(&[retry]).unwrap();
    let queued: Vec<QueueEntry> = store.queue_from(None).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        queued.iter().map(|e| (e.due, e.channel.as_str())).collect::<Vec<_>>(),
        [(at(0), "chn_b"), (at(60), "chn_a")]
    );
    assert_eq!(delivery(&queued[1]), Some(Recorded(record.clone())), "the retry finds the record");
    assert_eq!(delivery(&entry), Some(Recorded(record.clone())));
    let all: Vec<(String, Stage<Value, Value>)> = store.deliveries_of("t", "ntf", &channels, at(0)).unwrap();
    assert_eq!(
        all,
        [
            ("chn_a".to_string(), Recorded(record)),
            ("chn_b".to_string(), Waiting(json!({ "channel": "chn_b", "audience": ["ops"] })))
        ]
    );
}

fn concurrent_changes_to_one_record_are_applied_one_after_the_other(store: Store) {
    store.rules.put("t", "r", &json!({ "count": 0 })).unwrap();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    store
                        .rules
                        .update("t", "r", |rule: &mut Value| {
                            rule["count"] = json!(rule["count"].as_u64().unwrap() + 1);
                            true
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    let rule: Value = store.rules.get("t", "r").unwrap().unwrap();
    assert_eq!(rule["count"], 200, "no change is lost");
    let unchanged = store.rules.update("t", "r", |_: &mut Value| false).unwrap();
    assert_eq!(unchanged, None, "a change that changes nothing answers none");
    assert_eq!(store.rules.update("t", "gone", |_: &mut Value| true).unwrap(), None);
}

fn pruning_removes_old_events_with_their_place_in_time(store: Store) {
    for (id, seconds) in [("old1", -100), ("old2", -50), ("new", 10)] {
        ingest(&store, "t", &event(id, seconds), 1);
    }
    ingest(&store, "other", &event("old1", -100), 1);
    assert_eq!(store.prune_events("t", at(0)).unwrap(), 2);
    let kept: Vec<String> =
        store.events_since("t", at(-1000)).map(|e| e.map(|(_, e)| e.id)).collect::<Result<_, _>>().unwrap();
    assert_eq!(kept, ["new"]);
    assert!(ingest(&store, "t", &event("old1", 20), 2), "a pruned id may come again");
    assert_eq!(store.events_since("other", at(-1000)).count(), 1, "other tenants keep theirs");
}

fn a_status_page_slug_belongs_to_one_tenant_at_a_time(store: Store) {
    let page = |slug: &str, n: u64| json!({ "slug": slug, "n": n });
    assert_eq!(store.put_status_page("t1", "acme", &page("acme", 1)).unwrap(), Ok(()));
    assert_eq!(store.put_status_page("t2", "acme", &page("acme", 2)).unwrap(), Err("acme".to_string()));
    assert_eq!(store.put_status_page("t1", "acme-2", &page("acme-2", 3)).unwrap(), Ok(()));
    assert_eq!(store.put_status_page("t2", "acme", &page("acme", 4)).unwrap(), Ok(()), "the old slug was freed");
    let (owner, page) = store.status_page_by_slug::<Value>("acme").unwrap().unwrap();
    assert_eq!((owner.as_str(), page["n"].as_u64()), ("t2", Some(4)));
    assert_eq!(store.status_page_by_slug::<Value>("acme-2").unwrap().unwrap().0, "t1");
}

fn a_change_and_the_system_event_it_reports_are_kept_together(store: Store) {
    store.channels.put("t", "c", &json!({ "enabled": true })).unwrap();
    let report = |c: &Value| (c["enabled"] == false).then(|| event("sys_1", 0));
    let unchanged = store.update_reporting(&store.channels, "t", "c", |_: &mut Value| false, report).unwrap();
    assert_eq!(unchanged, None);
    assert!(store.first_system_event(|_| true).unwrap().is_none(), "no change, no report");
    let disable = |c: &mut Value| {
        c["enabled"] = json!(false);
        true
    };
    let changed = store.update_reporting(&store.channels, "t", "c", disable, report).unwrap();
    assert_eq!(changed, Some(json!({ "enabled": false })));
    let outboxed = store.first_system_event(|_| true).unwrap().expect("the report is in the outbox");
    assert_eq!((outboxed.pending.tenant.as_str(), outboxed.pending.event.id.as_str()), ("t", "sys_1"));
}

fn an_attempt_recorded_after_its_entry_left_the_queue_is_dropped(store: Store) {
    store.transact(|tx| tx.queue_delivery(at(0), "t", "ntf", "chn", &json!({ "attempts": 0 }))).unwrap();
    let write = |attempts: u64| DeliveryWrite {
        tenant: "t".into(),
        notification: "ntf".into(),
        channel: "chn".into(),
        json: serde_json::to_vec(&json!({ "attempts": attempts })).unwrap(),
        dequeue: Some(at(0)),
        enqueue: None,
        report: None,
    };
    store.save_deliveries(&[write(1)]).unwrap();
    // The same entry's attempt, recorded again (by a node that paused through the first).
    store.save_deliveries(&[write(2)]).unwrap();
    let all: Vec<(String, Stage<Value, Value>)> = store.deliveries_of("t", "ntf", &["chn".to_string()], at(0)).unwrap();
    assert_eq!(all, [("chn".to_string(), Recorded(json!({ "attempts": 1 })))], "the first record stands");
}

fn a_timer_is_taken_once(store: Store) {
    store.set_timer(at(5), "t", "rule", "cus_1", "").unwrap();
    let timer = store.next_timer(|_| true).unwrap().unwrap();
    let taken = || store.transact(|tx| tx.take_timer(&timer)).unwrap();
    assert!(taken(), "the first run takes it");
    assert!(!taken(), "a second run finds it gone and does nothing");
}

fn a_check_finds_records_whose_owners_are_gone(store: Store) {
    store.tenants.put("ten_a", &json!({ "id": "ten_a" })).unwrap();
    store.rules.put("ten_a", "rul_1", &json!({ "id": "rul_1" })).unwrap();
    store.alert_counts.insert(keys::rule_prefix("ten_a", "rul_1"), b"{}").unwrap();
    store.customers.insert("ten_a/cus_1", b"{}").unwrap();
    let checked = store.check().unwrap();
    assert!(checked.problems.is_empty(), "{:?}", checked.problems);
    assert!(checked.trees.contains(&("customers".to_string(), 1)), "{:?}", checked.trees);

    // A delivery whose notification is gone, counts whose rule is, a customer whose tenant is,
    // and a record that is not JSON.
    store.deliveries.insert(keys::delivery("ten_a", "ntf_gone", "chn_1"), b"{}").unwrap();
    store.alert_counts.insert(keys::rule_prefix("ten_a", "rul_gone"), b"{}").unwrap();
    store.customers.insert("ten_gone/cus_1", b"{}").unwrap();
    store.customers.insert("ten_a/cus_2", b"{not json").unwrap();
    let problems = store.check().unwrap().problems;
    let found = |words: &[&str]| problems.iter().any(|p| words.iter().all(|w| p.contains(w)));
    assert!(found(&["deliveries", "ntf_gone", "its notification does not exist"]), "{problems:?}");
    assert!(found(&["alert_counts", "rul_gone", "its rule does not exist"]), "{problems:?}");
    assert!(found(&["customers", "ten_gone/cus_1", "tenant `ten_gone`, which does not exist"]), "{problems:?}");
    assert!(found(&["customers", "ten_a/cus_2", "not JSON"]), "{problems:?}");
    assert_eq!(problems.len(), 4, "{problems:?}");
}

fn the_events_and_customers_kept_are_counted_as_they_come_and_go(store: Store) {
    let kept = |tenant: &str| (store.kept(tenant, Kept::Events).unwrap(), store.kept(tenant, Kept::Customers).unwrap());
    for (id, seconds) in [("old", -100), ("e1", 10), ("e2", 20)] {
        ingest(&store, "t", &event(id, seconds), 1);
    }
    ingest(&store, "t", &event("e1", 10), 2);
    let customer = |id: &str| json!({ "id": id });
    store
        .transact(|tx| {
            tx.put_customer("t", "c1", &customer("c1"))?;
            tx.put_customer("t", "c1", &customer("c1"))?;
            tx.put_customer("t", "c2", &customer("c2"))
        })
        .unwrap();
    assert_eq!(kept("t"), (3, 2), "a re-sent event and a customer written again count once");
    store.transact(|tx| tx.delete_customer("t", "c2").and_then(|()| tx.delete_customer("t", "gone"))).unwrap();
    store.prune_events("t", at(0)).unwrap();
    assert_eq!(kept("t"), (2, 1), "pruned and deleted ones are taken off");
    assert_eq!(kept("other"), (0, 0));
    let failed = store.transact(|tx| {
        tx.put_customer("t", "c3", &customer("c3"))?;
        Err::<(), _>(abort(StoreError::Shared("refused".into())))
    });
    assert!(failed.is_err());
    assert_eq!(kept("t"), (2, 1), "a transaction that fails counts nothing");
}
