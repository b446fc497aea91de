//! Usage accounting: what each virtual cluster and each workload instance consumed, for an operator who bills
//! tenants or just wants to see who uses the GPUs, and the short per-pod history the dashboard draws.
//!
//! The broker samples every tenant namespace with its own client (the metrics API for use, the quota for what is
//! reserved, claims for storage), integrates the samples over time into hourly buckets per instance, and checkpoints
//! them into records in its own namespace. docs/operations.md says how accurate it is.

pub mod model;

pub use model::{PodHistory, UsageSample, UsageTotals};
