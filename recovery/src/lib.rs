//! Recovery objectives for cairn: a policy file naming what is backed up,
//! where to, how much data may be lost (RPO) and how long a restore may
//! take (RTO); and the commands that carry it out and report on it.
//!
//! It drives the engine through its public API only.

pub mod drill;
pub mod interval;
pub mod metrics;
pub mod notify;
pub mod pg;
pub mod policy;
pub mod run;
pub mod runbook;
pub mod status;
pub mod upkeep;

pub use interval::Interval;
pub use policy::{Policy, PolicyError};
