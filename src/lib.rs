//! caas-broker: an Open Service Broker (OSB API v2.17) that gives Cloud Foundry tenants namespace-scoped Kubernetes
//! virtual clusters, scoped credentials and workloads, keeping all of its state in the cluster itself.
//!
//! - [`osb`]: the protocol layer (routes, extractors, the OSB error type),
//! - [`broker`]: what each OSB operation means,
//! - [`k8s`]: names, labels and the typed objects applied to the cluster,
//! - [`catalog`]: the offerings and plans, checked at load,
//! - [`config`], [`telemetry`], [`server`]: the process around them.

pub mod broker;
pub mod catalog;
pub mod config;
pub mod k8s;
pub mod metrics;
pub mod osb;
pub mod server;
pub mod telemetry;
