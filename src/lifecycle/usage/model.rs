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

impl UsageTotals {
    /// The counters in a fixed order, the order of [`UsageTotals::NAMES`] (records, CSV columns, metrics).
    pub fn values(&self) -> [f64; 7] {
        [
            self.cpu_core_seconds,
            self.memory_byte_seconds,
            self.cpu_requested_core_seconds,
            self.memory_requested_byte_seconds,
            self.gpu_seconds,
            self.storage_byte_seconds,
            self.session_pod_seconds,
        ]
    }

    /// Totals from values in the order of [`UsageTotals::NAMES`].
    pub fn from_values(values: [f64; 7]) -> UsageTotals {
        let [cpu, memory, cpu_requested, memory_requested, gpu, storage, session] = values;
        UsageTotals {
            cpu_core_seconds: cpu,
            memory_byte_seconds: memory,
            cpu_requested_core_seconds: cpu_requested,
            memory_requested_byte_seconds: memory_requested,
            gpu_seconds: gpu,
            storage_byte_seconds: storage,
            session_pod_seconds: session,
        }
    }

    /// The counters' names, as the fields, CSV columns and JSON keys spell them.
    pub const NAMES: [&'static str; 7] = [
        "cpu_core_seconds",
        "memory_byte_seconds",
        "cpu_requested_core_seconds",
        "memory_requested_byte_seconds",
        "gpu_seconds",
        "storage_byte_seconds",
        "session_pod_seconds",
    ];
}

impl std::ops::AddAssign for UsageTotals {
    fn add_assign(&mut self, other: UsageTotals) {
        let (mut mine, theirs) = (self.values(), other.values());
        for (value, added) in mine.iter_mut().zip(theirs) {
            *value += added;
        }
        *self = UsageTotals::from_values(mine);
    }
}
