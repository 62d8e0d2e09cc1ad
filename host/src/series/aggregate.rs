//! A metric's running aggregate for one bucket (enough to answer count, sum, min, max and avg,
//! and to merge buckets into a window), and an alert's series of buckets, kept in one record so
//! a window of any number of buckets is one read.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Agg {
    fn default() -> Self {
        Agg { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Agg {
    pub fn add(&mut self, sample: f64) {
        self.count += 1;
        self.sum += sample;
        self.min = self.min.min(sample);
        self.max = self.max.max(sample);
    }

    pub fn merge(&mut self, other: &Agg) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The aggregate's value; an empty window counts and sums to 0 and has no min, max or avg.
    pub fn value(&self, aggregate: Aggregate) -> Option<f64> {
        match aggregate {
            Aggregate::Count => Some(self.count as f64),
            Aggregate::Sum => Some(self.sum),
            _ if self.count == 0 => None,
            Aggregate::Min => Some(self.min),
            Aggregate::Max => Some(self.max),
            Aggregate::Avg => Some(self.sum / self.count as f64),
        }
    }

    pub fn to_bytes(self) -> [u8; 32] {
        let mut bytes = [0; 32];
        bytes[..8].copy_from_slice(&self.count.to_le_bytes());
        for (i, x) in [self.sum, self.min, self.max].into_iter().enumerate() {
            bytes[8 + i * 8..16 + i * 8].copy_from_slice(&x.to_le_bytes());
        }
        bytes
    }

    /// `None` for bytes that are not an aggregate.
    pub fn from_bytes(bytes: &[u8]) -> Option<Agg> {
        let word = |i: usize| -> Option<[u8; 8]> { bytes.get(i * 8..i * 8 + 8)?.try_into().ok() };
        if bytes.len() != 32 {
            return None;
        }
        Some(Agg {
            count: u64::from_le_bytes(word(0)?),
            sum: f64::from_le_bytes(word(1)?),
            min: f64::from_le_bytes(word(2)?),
            max: f64::from_le_bytes(word(3)?),
        })
    }
}

/// An alert's buckets in time order, each with its aggregate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    buckets: Vec<(i64, Agg)>,
}

const BUCKET_BYTES: usize = 40;

impl Series {
    /// Counts `sample` in `bucket` and drops the buckets older than `oldest` (a late event older
    /// than that is in no window that is still judged).
    pub fn add(&mut self, bucket: i64, sample: f64, oldest: i64) {
        super::bucket_mut(&mut self.buckets, bucket).add(sample);
        super::drop_before(&mut self.buckets, oldest);
    }

    /// The aggregate of the buckets from `first` to `last`, both included.
    pub fn window(&self, first: i64, last: i64) -> Agg {
        let mut total = Agg::default();
        for (_, agg) in self.buckets.iter().filter(|(b, _)| (first..=last).contains(b)) {
            total.merge(agg);
        }
        total
    }

    /// One bucket's aggregate (empty when it holds nothing).
    pub fn bucket(&self, bucket: i64) -> Agg {
        match self.buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
            Ok(i) => self.buckets[i].1,
            Err(_) => Agg::default(),
        }
    }

    /// Each bucket's value by `aggregate`, oldest first (empty buckets left out).
    pub fn values(&self, aggregate: Aggregate) -> Vec<(i64, f64)> {
        self.buckets.iter().filter_map(|(b, agg)| Some((*b, agg.value(aggregate)?))).collect()
    }

    /// The oldest bucket kept.
    pub fn first_bucket(&self) -> Option<i64> {
        self.buckets.first().map(|(b, _)| *b)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.buckets.len() * BUCKET_BYTES);
        for (bucket, agg) in &self.buckets {
            bytes.extend_from_slice(&bucket.to_le_bytes());
            bytes.extend_from_slice(&agg.to_bytes());
        }
        bytes
    }

    /// `None` for bytes that are not a series.
    pub fn from_bytes(bytes: &[u8]) -> Option<Series> {
        if !bytes.len().is_multiple_of(BUCKET_BYTES) {
            return None;
        }
        let buckets = bytes
            .chunks_exact(BUCKET_BYTES)
            .map(|chunk| Some((i64::from_le_bytes(chunk[..8].try_into().ok()?), Agg::from_bytes(&chunk[8..])?)))
            .collect::<Option<_>>()?;
        Some(Series { buckets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_keeps_its_window_and_drops_stale_buckets() {
        let mut series = Series::default();
        series.add(60, 1.0, 0);
        series.add(0, 2.0, 0);
        series.add(60, 3.0, 0);
        assert_eq!(series.window(0, 60).value(Aggregate::Sum), Some(6.0));
        assert_eq!(series.window(60, 120).value(Aggregate::Count), Some(2.0));
        assert_eq!(Series::from_bytes(&series.to_bytes()), Some(series.clone()));
        series.add(120, 1.0, 60);
        assert_eq!(series.window(0, 0).value(Aggregate::Count), Some(0.0), "bucket 0 dropped");
        assert_eq!(Series::from_bytes(b"odd"), None);
    }

    #[test]
    fn aggregates_merge_and_round_trip() {
        let mut a = Agg::default();
        assert_eq!(a.value(Aggregate::Count), Some(0.0));
        assert_eq!(a.value(Aggregate::Max), None);
        a.add(4.0);
        a.add(10.0);
        let mut b = Agg::default();
        b.add(-1.0);
        a.merge(&b);
        assert_eq!(a.value(Aggregate::Count), Some(3.0));
        assert_eq!(a.value(Aggregate::Sum), Some(13.0));
        assert_eq!(a.value(Aggregate::Min), Some(-1.0));
        assert_eq!(a.value(Aggregate::Max), Some(10.0));
        assert_eq!(Agg::from_bytes(&a.to_bytes()), Some(a));
        assert_eq!(Agg::from_bytes(b"short"), None);
    }
}
