//! Time buckets and what is counted in them: calendar and rolling windows (`window`), and the
//! running aggregates of a series of buckets (`aggregate`). Rules and cohorts both count with them.

pub mod aggregate;
pub mod window;
