//! Keys of the alert, timer and queue trees. Parts are joined with NUL, which no tenant, rule or
//! customer id holds; times are 8 big-endian bytes with the sign bit flipped, so keys sort by time.

use jiff::Timestamp;

/// `tenant\0rule\0`: every alert, aggregate and transition of a rule.
pub fn rule_prefix(tenant: &str, rule: &str) -> Vec<u8> {
    [tenant.as_bytes(), b"\0", rule.as_bytes(), b"\0"].concat()
}

/// `tenant\0rule\0scope`: one alert (and its series of aggregates).
pub fn alert(tenant: &str, rule: &str, scope: &str) -> Vec<u8> {
    [&rule_prefix(tenant, rule)[..], scope.as_bytes()].concat()
}

/// `tenant\0rule\0time sequence`: one entry of a rule's history.
pub fn transition(tenant: &str, rule: &str, at: Timestamp, sequence: u64) -> Vec<u8> {
    [&rule_prefix(tenant, rule)[..], &ordered(at.as_microsecond()), &sequence.to_be_bytes()].concat()
}

/// `tenant\0 time sequence`: one entry of the tenant's audit trail (the platform's own under the
/// empty tenant).
pub fn audit(tenant: &str, at: Timestamp, sequence: u64) -> Vec<u8> {
    [tenant.as_bytes(), b"\0", &ordered(at.as_microsecond()), &sequence.to_be_bytes()].concat()
}

/// `tenant\0 minute writer`: what one process counted of the tenant in one minute (minutes since
/// the epoch; `writer` tells the processes apart, so each adds only to its own entries).
pub fn stats(tenant: &str, minute: i64, writer: u64) -> Vec<u8> {
    [tenant.as_bytes(), b"\0", &ordered(minute), &writer.to_be_bytes()].concat()
}

/// The minute of a `stats` key whose tenant prefix (`tenant\0`) is `skip` bytes long.
pub fn stats_minute(key: &[u8], skip: usize) -> Option<i64> {
    Some(unordered(key.get(skip..skip + 8)?.try_into().ok()?))
}

/// `due tenant\0rule\0scope`: work for the scheduler. An empty scope is the rule's own tick
/// (its windows moving).
pub fn timer(due: Timestamp, tenant: &str, rule: &str, scope: &str) -> Vec<u8> {
    [&ordered(due.as_microsecond())[..], &alert(tenant, rule, scope)].concat()
}

/// `tenant\0 time id`: an event in time order.
pub fn event_time(tenant: &str, at: Timestamp, id: &str) -> Vec<u8> {
    [tenant.as_bytes(), b"\0", &ordered(at.as_microsecond()), id.as_bytes()].concat()
}

/// `tenant/id`: a tenant's record of a kind kept by id (customers, events, rules, ...).
pub fn record(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}

/// `tenant\0type\0shard`: one shard of the catalogue's entry for an event type (the shard as
/// two hex digits; each node writes its own, so nodes ingesting for one tenant at once do not
/// write the same entry).
pub fn event_type(tenant: &str, name: &str, shard: u8) -> Vec<u8> {
    [named(tenant, name), format!("\0{shard:02x}").into_bytes()].concat()
}

/// The event type an entry of the catalogue is for, from its key after `tenant\0`: the shard
/// goes (entries written before there were shards have none).
pub fn event_type_name(rest: &[u8]) -> String {
    let name = match rest.len().checked_sub(3).map(|at| rest.split_at(at)) {
        Some((name, [0, shard @ ..])) if shard.iter().all(u8::is_ascii_hexdigit) => name,
        _ => rest,
    };
    String::from_utf8_lossy(name).into_owned()
}

/// `tenant\0name`: a tenant's entry named `name` (an event type, an open incident's source, a
/// notification).
pub fn named(tenant: &str, name: &str) -> Vec<u8> {
    [tenant.as_bytes(), b"\0", name.as_bytes()].concat()
}

/// `tenant\0notification\0channel`: one delivery.
pub fn delivery(tenant: &str, notification: &str, channel: &str) -> Vec<u8> {
    alert(tenant, notification, channel)
}

/// `due tenant\0notification\0channel`: a delivery's attempt waiting in the queue (the shape
/// of a timer).
pub fn queued(due: Timestamp, tenant: &str, notification: &str, channel: &str) -> Vec<u8> {
    timer(due, tenant, notification, channel)
}

/// `sequence id`: a system event in the outbox, in the order they were made.
pub fn outbox(sequence: u64, id: &str) -> Vec<u8> {
    [&sequence.to_be_bytes()[..], id.as_bytes()].concat()
}

/// `time tenant\0node\0 sequence`: a change of the tenant's configuration in the change feed.
pub fn change(at: Timestamp, tenant: &str, node: &str, sequence: u64) -> Vec<u8> {
    [&change_prefix(at)[..], tenant.as_bytes(), b"\0", node.as_bytes(), b"\0", &sequence.to_be_bytes()].concat()
}

/// Where the changes noted at `at` begin.
pub fn change_prefix(at: Timestamp) -> [u8; 8] {
    ordered(at.as_microsecond())
}

/// A change's tenant and the node that noted it.
pub fn parse_change(key: &[u8]) -> Option<(&str, &str)> {
    let mut parts = key.get(8..)?.splitn(3, |b| *b == 0);
    let tenant = std::str::from_utf8(parts.next()?).ok()?;
    let node = std::str::from_utf8(parts.next()?).ok()?;
    Some((tenant, node))
}

/// A timer key's parts: due time, tenant, rule, scope.
pub fn parse_timer(key: &[u8]) -> Option<(Timestamp, &str, &str, &str)> {
    let (due, rest) = key.split_at_checked(8)?;
    let due = Timestamp::from_microsecond(unordered(due.try_into().ok()?)).ok()?;
    let (tenant, rule, scope) = parse_alert(rest)?;
    Some((due, tenant, rule, scope))
}

/// An alert key's parts: tenant, rule, scope.
pub fn parse_alert(key: &[u8]) -> Option<(&str, &str, &str)> {
    let mut parts = std::str::from_utf8(key).ok()?.splitn(3, '\0');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

fn ordered(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

fn unordered(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_sort_by_time_and_parse_back() {
        let early: Timestamp = "1969-12-31T00:00:00Z".parse().unwrap();
        let late: Timestamp = "2026-11-23T00:00:00Z".parse().unwrap();
        assert!(timer(early, "t", "r", "c") < timer(late, "a", "a", "a"));
        assert_eq!(parse_timer(&timer(late, "t", "r", "c/1")), Some((late, "t", "r", "c/1")));
        assert_eq!(parse_timer(&timer(late, "t", "r", "")).unwrap().3, "");
    }

    #[test]
    fn an_event_type_is_read_back_from_its_shard_and_from_before_shards() {
        let after_tenant = |key: Vec<u8>| key[named("t", "").len()..].to_vec();
        assert_eq!(event_type_name(&after_tenant(event_type("t", "usage", 0x2a))), "usage");
        assert_eq!(event_type_name(&after_tenant(event_type("t", "a\0b", 0))), "a\0b");
        assert_eq!(event_type_name(&after_tenant(named("t", "usage"))), "usage", "an entry from before shards");
        assert!(event_type("t", "usage", 0xff) < named("t", "usage2"), "a type's shards come together");
    }
}
