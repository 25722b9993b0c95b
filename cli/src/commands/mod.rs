//! One module per subcommand; each parses its arguments, calls the engine and prints.

pub mod audit;
pub mod backup;
pub mod cat;
pub mod check;
pub mod copy;
pub mod diff;
pub mod drill;
pub mod dump;
pub mod find;
pub mod forget;
pub mod generate;
pub mod init;
pub mod key;
pub mod ls;
pub mod mount;
pub mod pg;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod run;
pub mod runbook;
pub mod snapshots;
pub mod stats;
pub mod status;
pub mod tag;
pub mod unlock;
