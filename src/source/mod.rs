//! Where a location's backups come from besides files under a directory: backup tools'
//! repositories (restic snapshots, borg archives).

pub mod borg;
pub mod repository;
pub mod restic;
pub mod tool;
