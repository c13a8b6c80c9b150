//! The watch loop: ticks (interval or cron) start poll cycles that never overlap; a cycle
//! polls every image with bounded concurrency under each cloud's rate limit, and hands each
//! answer to `apply`, which tracks changes, evaluates alerts and commits both in one
//! transaction.

pub mod alerts;
pub mod apply;
pub mod cycle;
pub mod discovery;
pub mod publish;
pub mod ratelimit;
pub mod schedule;

pub use cycle::{CycleReport, Watcher};
