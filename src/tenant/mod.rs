//! The tenant's domain: what the dashboard does **as the signed-in user**, with the user's own `kube::Client` passed
//! in, so that Kubernetes' RBAC and admission decide every read and change (the broker's own privileges live in
//! [`crate::lifecycle`] alone). What a tenant's pages need of the lifecycle (its workload plans, a streaming session's
//! objects, the operator's workload placement) comes through the narrow [`crate::lifecycle::for_tenants`]; a change
//! to a workload plan is asked of Kubernetes as the user first, then carried out by the OSB update or deprovision.
//!
//! Nothing here knows HTML or HTTP: the dashboard turns forms into these types and answers into pages.

pub mod abilities;
pub mod alerts;
pub mod apps;
pub mod deploy;
pub mod edit;
pub mod endpoint;
pub mod map;
pub mod members;
pub mod objects;
pub mod overview;
pub mod search;
pub mod streaming;
pub mod terminal;
pub mod timeline;
pub mod workload_pods;
