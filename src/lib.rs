//! caas-broker: an Open Service Broker (OSB API v2.17) that gives Cloud Foundry tenants namespace-scoped Kubernetes
//! virtual clusters, scoped credentials and workloads, keeping all of its state in the cluster itself.
//!
//! The folders follow where each privilege lives:
//! - [`osb`]: the OSB face (routes, extractors, middleware, OSB error answers, per-version response shaping),
//! - [`dashboard`]: the tenants' face (sign-in, the pages of a virtual cluster, its live streams),
//! - [`lifecycle`]: what the broker does with its own cluster-wide client — instances, bindings, identities, members,
//!   sign-in, the tenant guard and drift repair: the only module that holds the broker's privileges,
//! - [`tenant`]: what the dashboard does as the signed-in user, with the user's own client (Kubernetes decides),
//! - [`k8s`]: names, labels and the typed objects applied to the cluster,
//! - [`catalog`]: the offerings and plans, checked at load,
//! - [`config`], [`metrics`], [`telemetry`], [`server`]: the process around them.
//!
//! Dependencies go one way: [`osb`] → [`lifecycle`]; [`dashboard`] → [`tenant`] → [`lifecycle`]; both → [`k8s`] and
//! [`catalog`]; nothing below a face imports it, and [`lifecycle`] does not import [`tenant`].

pub mod catalog;
pub mod config;
pub mod dashboard;
pub mod k8s;
pub mod lifecycle;
pub mod metrics;
pub mod osb;
pub mod server;
pub mod telemetry;
pub mod tenant;
