//! backup-monitor: prove that backups exist, are intact and can actually be restored.
//!
//! Data flows one way: config → scan/verify/restore (facts and problems into the store)
//! → report/alert (read the store). See docs/architecture.md.

pub mod alert;
pub mod child;
pub mod cli;
pub mod config;
pub mod explain;
pub mod health;
pub mod heartbeat;
pub mod lifecycle;
pub mod lock;
pub mod logging;
pub mod monitor;
pub mod outcome;
pub mod output;
pub mod problem;
pub mod recent_log;
pub mod report;
pub mod restore;
pub mod run;
pub mod scan;
pub mod schedule;
pub mod source;
pub mod stale;
pub mod store;
pub mod summary;
pub mod timestamp;
pub mod tuning;
pub mod verify;
pub mod workflow;
