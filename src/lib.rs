//! caas-broker: an Open Service Broker (OSB API v2.17) that gives Cloud Foundry tenants namespace-scoped Kubernetes
//! virtual clusters, scoped credentials and workloads, keeping all of its state in the cluster itself.
//!
//! - [`osb`]: the OSB face (routes, extractors, middleware, OSB error answers, per-version response shaping),
//! - [`dashboard`]: the tenants' face (sign-in with a token, an overview read as the signed-in identity),
//! - [`broker`]: what each operation means, what it takes and returns, and its errors: the domain every face shares,
//! - [`k8s`]: names, labels and the typed objects applied to the cluster,
//! - [`catalog`]: the offerings and plans, checked at load,
//! - [`config`], [`telemetry`], [`server`]: the process around them.
//!
//! Dependencies go one way: [`osb`] and [`dashboard`] → [`broker`] → [`k8s`] and [`catalog`]; nothing below a face imports it.

pub mod broker;
pub mod catalog;
pub mod config;
pub mod dashboard;
pub mod k8s;
pub mod metrics;
pub mod osb;
pub mod server;
pub mod telemetry;
