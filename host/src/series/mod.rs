//! Time buckets and what is counted in them: calendar and rolling windows (`window`), the
//! running aggregates of a rule's series of buckets (`aggregate`), a bucket judged against its
//! history (`anomaly`), a sum's run rate projected forward (`forecast`), and the plain event
//! counts of a cohort's criteria (`counts`). Rules and cohorts both count with them.

pub mod aggregate;
pub mod anomaly;
pub mod counts;
pub mod forecast;
pub mod window;

/// The value of `bucket` in buckets kept in time order, inserted empty when missing.
fn bucket_mut<T: Default>(buckets: &mut Vec<(i64, T)>, bucket: i64) -> &mut T {
    let i = match buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
        Ok(i) => i,
        Err(i) => {
            buckets.insert(i, (bucket, T::default()));
            i
        }
    };
    &mut buckets[i].1
}

/// Drops the buckets older than `oldest`.
fn drop_before<T>(buckets: &mut Vec<(i64, T)>, oldest: i64) {
    let stale = buckets.partition_point(|(b, _)| *b < oldest);
    buckets.drain(..stale);
}
