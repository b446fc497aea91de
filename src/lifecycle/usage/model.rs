//! What accounting measures, in the units a bill uses: seconds of a core, of a byte, of a GPU, of a pod.

use serde::{Deserialize, Serialize};

/// What one instance consumed over a span of time; every field is an integral over time (a rate times seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// CPU in use (metrics API), in core-seconds.
    pub cpu_core_seconds: f64,
    /// Memory in use (metrics API, working set), in byte-seconds.
    pub memory_byte_seconds: f64,
    /// CPU reserved (requests of the running pods), in core-seconds.
    pub cpu_requested_core_seconds: f64,
    /// Memory reserved (requests of the running pods), in byte-seconds.
    pub memory_requested_byte_seconds: f64,
    /// GPUs reserved (`nvidia.com/gpu` requests), in GPU-seconds.
    pub gpu_seconds: f64,
    /// Storage claimed (PersistentVolumeClaims' requested size), in byte-seconds.
    pub storage_byte_seconds: f64,
    /// Streaming sessions' pods running, in pod-seconds.
    pub session_pod_seconds: f64,
}

/// One sample of a pod's use, as the metrics API gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageSample {
    /// When the broker read it.
    pub at: jiff::Timestamp,
    /// CPU in use, in millicores.
    pub cpu_millicores: u64,
    /// Memory in use (working set), in bytes.
    pub memory_bytes: u64,
}

/// A pod's recent use, oldest sample first: what the dashboard draws as a sparkline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodHistory {
    /// The pod's name.
    pub pod: String,
    /// Its samples over the last hour, oldest first.
    pub samples: Vec<UsageSample>,
}
