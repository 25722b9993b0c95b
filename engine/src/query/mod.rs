//! Reading snapshots without changing them: choosing and grouping them,
//! walking and searching their trees, comparing two, writing files out,
//! sizes, and the one change that touches only snapshots, their tags.

pub mod browse;
pub mod diff;
pub mod dump;
pub mod find;
pub(crate) mod nesting;
pub mod read_at;
pub mod select;
pub mod stats;
pub mod tag;
