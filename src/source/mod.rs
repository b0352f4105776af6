//! Where a location's backups come from, besides files under its path.

pub mod job_log;
