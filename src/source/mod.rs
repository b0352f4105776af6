//! Where a location's backups come from besides files under a directory: backup tools'
//! repositories (restic snapshots, borg archives) and backup systems' job logs.

pub mod borg;
pub mod job_log;
pub mod repository;
pub mod restic;
pub mod tool;
