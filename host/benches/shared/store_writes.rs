//! What a server's store wrote, per tree, from its `/metrics`: for benches that tell what an
//! event costs on disk.

use std::collections::BTreeMap;

use reqwest::Method;

use crate::support::Server;

/// Entries and bytes written so far, by tree.
pub type Written = BTreeMap<String, (f64, f64)>;

pub fn written(server: &Server) -> Written {
    let text = server.request(Method::GET, "/metrics", None).send().unwrap().text().unwrap();
    let mut trees = Written::new();
    for line in text.lines() {
        let sample = |family: &str| {
            let rest = line.strip_prefix(family)?.strip_prefix("{tree=\"")?;
            let (tree, value) = rest.split_once("\"} ")?;
            Some((tree.to_string(), value.parse::<f64>().ok()?))
        };
        if let Some((tree, writes)) = sample("klaxon_store_writes_total") {
            trees.entry(tree).or_default().0 = writes;
        } else if let Some((tree, bytes)) = sample("klaxon_store_written_bytes_total") {
            trees.entry(tree).or_default().1 = bytes;
        }
    }
    trees
}

/// What was written since `before`, per event of `events`: "7.14 entries, 3913 bytes (events
/// 1.00/197 B, ...)", leaving out trees written less than once per 200 events.
pub fn per_event(server: &Server, before: &Written, events: usize) -> String {
    let events = events as f64;
    let per_tree: Vec<(String, f64, f64)> = written(server)
        .into_iter()
        .map(|(tree, (writes, bytes))| {
            let (writes_before, bytes_before) = before.get(&tree).copied().unwrap_or_default();
            (tree, (writes - writes_before) / events, (bytes - bytes_before) / events)
        })
        .filter(|(_, writes, _)| *writes >= 0.005)
        .collect();
    format!(
        "{:.2} entries, {:.0} bytes ({})",
        per_tree.iter().map(|(_, writes, _)| writes).sum::<f64>(),
        per_tree.iter().map(|(_, _, bytes)| bytes).sum::<f64>(),
        per_tree.iter().map(|(tree, w, b)| format!("{tree} {w:.2}/{b:.0} B")).collect::<Vec<_>>().join(", ")
    )
}
