//! Backups with the command line: `klaxon backup` of a running server under ingest load (through
//! the server) and of a stopped one (from its folder), `klaxon restore` into a new folder,
//! `klaxon check` of it, and a server started there with everything, its pending deliveries
//! going out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::{LOOPBACK_ALLOWED, Setup};
use crate::receivers::{Receiver, Reply};
use crate::support::{ADMIN, Server};

fn klaxon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(args)
        .env("KLAXON_ADMIN_TOKEN", ADMIN)
        .output()
        .expect("klaxon runs")
}

/// `klaxon backup` of `data` into `to`; answers the manifest it prints.
fn backup(data: &Path, to: &Path) -> Value {
    let out = klaxon(&["backup", "--data-dir", path(data), "--to", path(to)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the manifest")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn count(manifest: &Value, tree: &str) -> u64 {
    manifest["trees"][tree].as_u64().unwrap_or(0)
}

/// Every notification of the tenant, newest first.
fn notifications(server: &Server, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = "/v1/notifications?limit=500".to_string();
    loop {
        let (status, page) = server.call(Method::GET, &path, key, None);
        assert_eq!(status, 200, "{page}");
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_before"].as_str() {
            Some(before) => path = format!("/v1/notifications?limit=500&before={before}"),
            None => return all,
        }
    }
}

#[test]
fn a_backup_taken_under_ingest_load_restores_everything_and_its_pending_deliveries_go_out() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    // The receiver is down while the backup is taken: every delivery is pending.
    receiver.script(vec![Reply::status(503); 100_000]);
    let channel = s.webhook(&receiver.url);
    let rule = s.rule(&[&channel]);
    let dir = tempfile::tempdir().unwrap();
    let before = backup(&s.server.data(), &dir.path().join("before"));
    // Each signup makes one notification, queued for one channel: whatever the load, a copy of
    // one instant holds as many more events as notifications as queued deliveries.
    let gap = |m: &Value| count(m, "events") - count(m, "notifications");

    let stop = AtomicBool::new(false);
    let batches = AtomicU32::new(0);
    let during = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let b = batches.load(Ordering::Relaxed);
                let now = s.server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
                let events: Vec<Value> = (0..20)
                    .map(|i| {
                        json!({ "id": format!("l{b}-{i}"), "customer_id": format!("c{b}-{i}"), "type": "signup",
                                     "timestamp": now })
                    })
                    .collect();
                let (status, body) =
                    s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": events })));
                assert_eq!(status, 200, "{body}");
                batches.fetch_add(1, Ordering::Relaxed);
            }
        });
        while batches.load(Ordering::Relaxed) < 5 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let during = backup(&s.server.data(), &dir.path().join("during"));
        let more = batches.load(Ordering::Relaxed) + 3;
        while batches.load(Ordering::Relaxed) < more {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        during
    });
    let signups = count(&during, "notifications") - count(&before, "notifications");
    assert!(signups >= 100, "the backup was taken while events came: {during:#}");
    assert_eq!(gap(&during), gap(&before), "events and their notifications at one instant: {during:#}");
    assert_eq!(count(&during, "delivery_queue") - count(&before, "delivery_queue"), signups, "{during:#}");
    let (_, rules) = s.server.call(Method::GET, "/v1/rules", &s.key, None);
    let (_, channels) = s.server.call(Method::GET, "/v1/channels", &s.key, None);
    let mut original = s.server;
    original.stop("KILL");

    // Restored into a new folder, a server has the same rules, channels and keys, the
    // notifications the backup held, and delivers those that were pending.
    let backup_file = dir.path().join("during");
    let restored = Server::start_on(Some(LOOPBACK_ALLOWED), &["--manual-clock"], |data| {
        let out = klaxon(&["restore", "--from", path(&backup_file), "--data-dir", path(data)]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed, during, "restore prints the manifest it checked");
        let checked = klaxon(&["check", "--data-dir", path(data)]);
        assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stdout));
    });
    let r = Setup::resume(restored, s.key.clone(), 0);
    assert_eq!(r.server.call(Method::GET, "/v1/rules", &r.key, None).1, rules);
    assert_eq!(r.server.call(Method::GET, "/v1/channels", &r.key, None).1, channels);
    let held = notifications(&r.server, &r.key);
    assert_eq!(held.len() as u64, count(&during, "notifications"));
    assert!(held.iter().all(|n| n["rule_id"] == rule.as_str() && n["status"] != "delivered"), "all pending");
    receiver.script(vec![]);
    r.clock(&r.at("PT6H"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while notifications(&r.server, &r.key).iter().any(|n| n["status"] != "delivered") {
        assert!(Instant::now() < deadline, "the restored server delivers what was pending");
        std::thread::sleep(Duration::from_millis(100));
    }
    let delivered: std::collections::HashSet<String> = receiver
        .requests()
        .iter()
        .filter(|r| r.body.contains("signup"))
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert!(delivered.len() as u64 >= signups, "each pending notification reached the receiver");
    // The restored server gives ids of its own (not those of the backed-up one's last ones).
    let next = r.signup("after-restore");
    assert!(held.iter().all(|n| n["id"] != next.as_str()));
}

#[test]
fn a_damaged_or_truncated_backup_is_refused_and_nothing_is_written() {
    let mut server = Server::start();
    let (_, key) = server.tenant("acme");
    server.stop("TERM");
    let dir = tempfile::tempdir().unwrap();
    // A stopped server's folder is backed up from the folder itself.
    let good = dir.path().join("good");
    let manifest = backup(&server.data(), &good);
    assert_eq!(count(&manifest, "tenants"), 1, "{manifest:#}");
    let out = klaxon(&["backup", "--data-dir", path(&server.data()), "--to", path(&good)]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("exists"));

    let bytes = std::fs::read(&good).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    let damaged: [(&str, Vec<u8>); 3] =
        [("flipped", flipped), ("truncated", bytes[..bytes.len() - 40].to_vec()), ("empty", Vec::new())];
    for (name, content) in damaged {
        let file = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        let target: PathBuf = dir.path().join(format!("{name}-restored"));
        let out = klaxon(&["restore", "--from", path(&file), "--data-dir", path(&target)]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {said}");
        assert!(said.contains("damaged or truncated"), "{name}: {said}");
        assert!(!target.exists(), "{name}: nothing was written");
    }
    // A folder that holds something is never written over.
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let out = klaxon(&["restore", "--from", path(&good), "--data-dir", path(&taken)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"), "{out:?}");
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1);

    // The undamaged file restores to a consistent store, and a server there knows the tenant's key.
    let restored = Server::start_on(None, &[], |data| {
        assert!(klaxon(&["restore", "--from", path(&good), "--data-dir", path(data)]).status.success());
        let checked = klaxon(&["check", "--data-dir", path(data)]);
        let said = String::from_utf8_lossy(&checked.stdout);
        assert!(checked.status.success() && said.contains("consistent"), "{said}");
    });
    assert_eq!(restored.call(Method::GET, "/v1/rules", &key, None).0, 200);
}
