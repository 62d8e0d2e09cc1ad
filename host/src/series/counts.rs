//! How many events fell in each time bucket: what a cohort's criterion counts (its own samples
//! are all alike, so a count per bucket is all it keeps).

/// Buckets in time order with their counts (none zero).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    buckets: Vec<(i64, u64)>,
}

impl Counts {
    /// Counts an event in `bucket` and drops the buckets older than `oldest`.
    pub fn add(&mut self, bucket: i64, oldest: i64) {
        *super::bucket_mut(&mut self.buckets, bucket) += 1;
        super::drop_before(&mut self.buckets, oldest);
    }

    /// Adds every bucket of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (bucket, n) in &other.buckets {
            *super::bucket_mut(&mut self.buckets, *bucket) += n;
        }
    }

    /// The buckets and their counts, oldest first.
    pub fn buckets(&self) -> impl ExactSizeIterator<Item = (i64, u64)> + '_ {
        self.buckets.iter().copied()
    }

    /// The events in the buckets from `first` to `last`, both included.
    pub fn total(&self, first: i64, last: i64) -> u64 {
        self.buckets().filter(|(b, _)| (first..=last).contains(b)).map(|(_, n)| n).sum()
    }

    /// Counts from their buckets; `None` unless they are in time order and none is zero.
    pub fn from_buckets(buckets: Vec<(i64, u64)>) -> Option<Counts> {
        let ordered = buckets.windows(2).all(|pair| pair[0].0 < pair[1].0);
        (ordered && buckets.iter().all(|(_, n)| *n > 0)).then_some(Counts { buckets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_merge_and_drop_stale_buckets() {
        let mut counts = Counts::default();
        for bucket in [60, 0, 0, 60] {
            counts.add(bucket, 0);
        }
        assert_eq!(counts.total(0, 60), 4);
        assert_eq!(counts.total(60, 120), 2);
        counts.add(120, 60);
        assert_eq!(counts.buckets().collect::<Vec<_>>(), [(60, 2), (120, 1)], "bucket 0 dropped");
        let mut other = Counts::default();
        other.add(60, 0);
        other.add(180, 0);
        counts.merge(&other);
        assert_eq!(counts.buckets().collect::<Vec<_>>(), [(60, 3), (120, 1), (180, 1)]);
        assert_eq!(Counts::from_buckets(counts.buckets().collect()), Some(counts));
        assert_eq!(Counts::from_buckets(vec![(60, 1), (0, 1)]), None);
        assert_eq!(Counts::from_buckets(vec![(60, 0)]), None);
    }
}
