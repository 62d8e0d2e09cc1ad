//! Where a customer stands in one cohort, and how the tracks of all its cohorts are stored: a
//! compact binary form (in base64 inside the customer's JSON record), since every event of the
//! customer reads and writes them all.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serializer, de};

use crate::series::counts::Counts;

/// Where a customer stands in one cohort. Kept inside the customer's record, so an event reads
/// and writes one record for its customer however many cohorts there are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CohortTrack {
    /// Whether the events from before the definition are counted in (by the cohort's
    /// computation); until then the customer is not judged.
    pub counted_past: bool,
    /// Since when it is a member; `None` while it is not.
    pub member_since: Option<Timestamp>,
    /// When time alone may change its membership next: a timer is set for then.
    pub due: Option<Timestamp>,
    /// Per behaviour criterion of the cohort that counts events, its events per time bucket.
    pub counts: Vec<Counts>,
}

/// The first byte of the stored form, for a later change of layout.
const LAYOUT: u8 = 1;
const COUNTED_PAST: u8 = 1;
const MEMBER: u8 = 2;
const DUE: u8 = 4;

/// `#[serde(with = "codec")]` for a customer's tracks by cohort id.
pub mod codec {
    use super::*;

    pub fn serialize<S: Serializer>(tracks: &BTreeMap<u64, CohortTrack>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD_NO_PAD.encode(encode(tracks)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u64, CohortTrack>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = STANDARD_NO_PAD.decode(text.as_bytes()).map_err(de::Error::custom)?;
        decode(&bytes).ok_or_else(|| de::Error::custom("not a customer's cohort tracks"))
    }
}

fn encode(tracks: &BTreeMap<u64, CohortTrack>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + tracks.len() * 24);
    out.push(LAYOUT);
    for (version, track) in tracks {
        uint(&mut out, *version);
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        out.push(
            flag(track.counted_past, COUNTED_PAST)
                | flag(track.member_since.is_some(), MEMBER)
                | flag(track.due.is_some(), DUE),
        );
        for at in [track.member_since, track.due].into_iter().flatten() {
            int(&mut out, at.as_second());
            int(&mut out, at.subsec_nanosecond().into());
        }
        uint(&mut out, track.counts.len() as u64);
        for counts in &track.counts {
            uint(&mut out, counts.buckets().len() as u64);
            let mut previous = 0;
            for (bucket, n) in counts.buckets() {
                int(&mut out, bucket - previous);
                uint(&mut out, n);
                previous = bucket;
            }
        }
    }
    out
}

fn decode(bytes: &[u8]) -> Option<BTreeMap<u64, CohortTrack>> {
    let (&layout, rest) = bytes.split_first()?;
    if layout != LAYOUT {
        return None;
    }
    let mut input = Reader(rest);
    let mut tracks = BTreeMap::new();
    while !input.0.is_empty() {
        let version = input.uint()?;
        let flags = input.take(1)?[0];
        let mut time = |bit: u8| -> Option<Option<Timestamp>> {
            if flags & bit == 0 {
                return Some(None);
            }
            let second = input.int()?;
            let nanos = i32::try_from(input.int()?).ok()?;
            Timestamp::new(second, nanos).ok().map(Some)
        };
        let (member_since, due) = (time(MEMBER)?, time(DUE)?);
        let slots = input.uint()? as usize;
        let mut counts = Vec::with_capacity(slots.min(64));
        for _ in 0..slots {
            let len = input.uint()? as usize;
            let mut buckets = Vec::with_capacity(len.min(1024));
            let mut bucket = 0i64;
            for _ in 0..len {
                bucket = bucket.checked_add(input.int()?)?;
                buckets.push((bucket, input.uint()?));
            }
            counts.push(Counts::from_buckets(buckets)?);
        }
        let counted_past = flags & COUNTED_PAST != 0;
        tracks.insert(version, CohortTrack { counted_past, member_since, due, counts });
    }
    Some(tracks)
}

/// Appends `n` in LEB128: seven bits a byte, low first, the high bit saying more follow.
fn uint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends a signed `n` zigzagged (0, -1, 1, -2, ... as 0, 1, 2, 3, ...), so small magnitudes
/// stay short.
fn int(out: &mut Vec<u8>, n: i64) {
    uint(out, ((n << 1) ^ (n >> 63)) as u64);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn uint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            n |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn int(&mut self) -> Option<i64> {
        let n = self.uint()?;
        Some((n >> 1) as i64 ^ -((n & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_round_trip_compactly() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let mut counts = Counts::default();
        counts.add(1_893_456_000, 0);
        counts.add(1_893_456_060, 0);
        counts.add(1_893_456_060, 0);
        let tracks = BTreeMap::from([
            (
                1 << 40,
                CohortTrack {
                    counted_past: true,
                    member_since: Some(at("2030-01-01T00:00:00.123456789Z")),
                    due: Some(at("1960-01-01T00:00:00.5Z")),
                    counts: vec![counts, Counts::default()],
                },
            ),
            (7, CohortTrack::default()),
        ]);
        let bytes = encode(&tracks);
        assert!(bytes.len() < 48, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes), Some(tracks));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None, "cut short");
        assert_eq!(decode(&[LAYOUT + 1]), None, "unknown layout");
        assert_eq!(decode(&[LAYOUT, 0xff]), None, "unfinished number");
    }
}
