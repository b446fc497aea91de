//! The resource metrics API's pod metrics (`metrics.k8s.io/v1beta1`, served by a metrics server), read in one place:
//! k8s-openapi has no type for them, and both the dashboard (as the signed-in user) and usage accounting (as the
//! broker) read them.

use kube::Client;

use crate::catalog::quantity;

/// One pod's use as the metrics API reports it, summed over its containers, in thousandths of the unit (what
/// quantities parse to): millicores of CPU, thousandths of a byte of memory (the working set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodUse<'a> {
    /// The pod's name.
    pub pod: &'a str,
    /// CPU in use, in millicores.
    pub cpu: i128,
    /// Memory in use, in thousandths of a byte.
    pub memory: i128,
}

/// Reads the `PodMetricsList` of `namespace` with `client`, whose identity decides whether it may.
pub async fn fetch(client: &Client, namespace: &str) -> Result<serde_json::Value, kube::Error> {
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods");
    let request = http::Request::get(path).body(Vec::new()).map_err(kube::Error::HttpError)?;
    client.request(request).await
}

/// The pods of a `PodMetricsList`; an item without a name or a container list is left out.
pub fn pods(list: &serde_json::Value) -> impl Iterator<Item = PodUse<'_>> {
    list["items"].as_array().into_iter().flatten().filter_map(|item| {
        let pod = item["metadata"]["name"].as_str()?;
        let containers = item["containers"].as_array()?;
        let used = |resource: &str| {
            containers.iter().filter_map(|c| c["usage"][resource].as_str().and_then(quantity::parse)).map(|m| m.0).sum()
        };
        Some(PodUse { pod, cpu: used("cpu"), memory: used("memory") })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_pods_use_is_the_sum_of_its_containers() {
        let list = json!({ "kind": "PodMetricsList", "items": [
            { "metadata": { "name": "web-1" }, "containers": [
                { "name": "app", "usage": { "cpu": "250m", "memory": "64Mi" } },
                { "name": "proxy", "usage": { "cpu": "1m", "memory": "1Ki" } } ] },
            { "metadata": { "name": "no-containers" } },
            { "containers": [] } ] });
        let found: Vec<PodUse> = pods(&list).collect();
        assert_eq!(found, [PodUse { pod: "web-1", cpu: 251, memory: (64 * 1024 * 1024 + 1024) * 1000 }]);
    }
}
