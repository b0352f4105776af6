//! The integration tests: one binary (as ripgrep does), one module per area, each running
//! the real `backup-monitor` binary against real files and servers on 127.0.0.1.

mod common;
mod support;

mod alerts;
mod borg;
mod cli;
mod config;
mod example;
mod explain;
mod fleet;
mod fleet_alerts;
mod fleet_connect;
mod fleet_report;
mod hostile;
mod hostile_archive;
mod hostile_rest;
mod hostile_sql;
mod job_log;
mod junit;
mod lifecycle;
mod messages;
mod monitor;
mod month;
mod operator;
mod prometheus;
mod reliability;
mod report;
mod restic;
mod restore;
mod restore_custom;
mod restore_depth;
mod restore_keys;
mod restore_runs;
mod restore_sql;
mod s3;
mod schema;
mod snapshots;
mod timestamps;
mod verify;
mod watcher;
