//! caas-broker: an Open Service Broker (OSB API v2.17) that gives Cloud Foundry tenants namespace-scoped Kubernetes
//! virtual clusters, scoped credentials and workloads, keeping all of its state in the cluster itself.
