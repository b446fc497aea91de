//! The objects of one kind that the broker keeps its state in, behind one handle: reads go to the cluster or to a
//! watch-fed copy of their metadata ([`Watched`]), and every write goes to the cluster and is then noted in the copy,
//! so that the copy does not answer for an object this process has just written until its watch has shown the write.
//! Read-your-writes holds by construction: only a repository tells its copy of writes.

use std::fmt::Debug;
use std::sync::Arc;

use either::Either;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use kube::api::{DeleteParams, ListParams, ObjectList, Patch, PatchParams, PostParams};
use kube::core::{PartialObjectMeta, Status};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::watched::{Cached, CachedMeta, Watched};

/// The objects of one kind, in one namespace or cluster-wide, with the watch-fed copy of their metadata (see the
/// module documentation).
pub struct Repository<K> {
    api: Api<K>,
    /// The same objects, metadata only: what the copy's watch reads.
    metadata: Api<PartialObjectMeta<K>>,
    copy: Watched,
}

impl<K> Repository<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    /// The objects of `namespace`; `kind` names the copy in logs and metrics, which holds only the label and
    /// annotation keys `keep` accepts (see [`Watched::new`]).
    pub fn namespaced(client: &Client, namespace: &str, kind: &'static str, keep: fn(&str) -> bool) -> Repository<K> {
        Repository {
            api: Api::namespaced(client.clone(), namespace),
            metadata: Api::namespaced(client.clone(), namespace),
            copy: Watched::new(kind, keep),
        }
    }
}

impl<K> Repository<K>
where
    K: Resource<Scope = ClusterResourceScope>,
    K::DynamicType: Default,
{
    /// The objects of a cluster-wide kind; `kind` and `keep` as for [`Repository::namespaced`].
    pub fn all(client: &Client, kind: &'static str, keep: fn(&str) -> bool) -> Repository<K> {
        Repository { api: Api::all(client.clone()), metadata: Api::all(client.clone()), copy: Watched::new(kind, keep) }
    }
}

impl<K> Repository<K>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    /// Starts the copy's watch of the objects `selector` chooses (see [`Watched::start`]); until it has listed, and
    /// whenever it fails, the copy answers [`Cached::Unknown`].
    pub fn start(&self, selector: &str, watch_seconds: u32) {
        self.copy.start(self.metadata.clone(), selector, watch_seconds);
    }

    /// The watch-fed copy, for reads that may be answered from memory.
    pub fn copy(&self) -> &Watched {
        &self.copy
    }

    /// The metadata the copy holds of `name`; `None` when it is absent or the copy cannot answer.
    pub fn present(&self, name: &str) -> Option<Arc<CachedMeta>> {
        match self.copy.get(name) {
            Cached::Present(kept) => Some(kept),
            Cached::Absent | Cached::Unknown => None,
        }
    }

    /// The object called `name`, read from the cluster; `None` when there is none.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>, kube::Error> {
        self.api.get_opt(name).await
    }

    /// The metadata of the objects `params` chooses, read from the cluster.
    pub async fn list_metadata(&self, params: &ListParams) -> Result<ObjectList<PartialObjectMeta<K>>, kube::Error> {
        self.api.list_metadata(params).await
    }

    /// Creates `object`.
    pub async fn create(&self, params: &PostParams, object: &K) -> Result<K, kube::Error> {
        self.noted(self.api.create(params, object).await)
    }

    /// Server-side applies `object` under the broker's field manager (see [`super::apply`]).
    pub async fn apply(&self, object: &K) -> Result<K, kube::Error> {
        self.noted(super::apply(&self.api, object).await)
    }

    /// Patches the object called `name`.
    pub async fn patch<P: Serialize + Debug>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, kube::Error> {
        self.noted(self.api.patch(name, params, patch).await)
    }

    /// Replaces the object called `name` with `object`.
    pub async fn replace(&self, name: &str, params: &PostParams, object: &K) -> Result<K, kube::Error> {
        self.noted(self.api.replace(name, params, object).await)
    }

    /// Deletes the object called `name`: the object while its deletion waits (finalizers), or the apiserver's status.
    /// The delete is noted whatever its outcome (one that failed only costs reads of the cluster).
    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<Either<K, Status>, kube::Error> {
        let result = self.api.delete(name, params).await;
        match &result {
            Ok(Either::Left(object)) => self.copy.wrote(object.meta()),
            Ok(Either::Right(_)) | Err(_) => self.copy.deleted(name),
        }
        result
    }

    /// Notes a successful write in the copy.
    fn noted(&self, written: Result<K, kube::Error>) -> Result<K, kube::Error> {
        if let Ok(object) = &written {
            self.copy.wrote(object.meta());
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::body::{Bytes, Frame};
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::ObjectMeta;

    use super::*;

    /// An apiserver that lists one namespace (`held`), holds every watch open without an event, and answers each
    /// write: a create and an apply with the object at a newer version, a delete with a status.
    fn apiserver() -> Client {
        let service = tower::service_fn(|request: http::Request<kube::client::Body>| async move {
            let query = request.uri().query().unwrap_or_default();
            let body = match request.method().as_str() {
                "GET" if query.contains("watch=true") => {
                    let never = futures::stream::pending::<Result<Frame<Bytes>, Infallible>>();
                    return Ok::<_, Infallible>(http::Response::new(StreamBody::new(never).boxed()));
                }
                "GET" => {
                    r#"{"metadata":{"resourceVersion":"4"},"items":[{"metadata":{"name":"held","resourceVersion":"3"}}]}"#
                }
                "POST" => r#"{"metadata":{"name":"made","resourceVersion":"5"}}"#,
                "PATCH" => r#"{"metadata":{"name":"held","resourceVersion":"6"}}"#,
                _ => r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":200}"#,
            };
            Ok(http::Response::new(Full::new(Bytes::from(body)).boxed()))
        });
        Client::new(service, "default")
    }

    fn namespace(name: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta { name: Some(name.to_owned()), ..ObjectMeta::default() },
            ..Namespace::default()
        }
    }

    #[tokio::test]
    async fn every_write_keeps_the_copy_from_answering_for_its_object_until_the_watch_shows_it() {
        let namespaces = Repository::<Namespace>::all(&apiserver(), "namespaces", |_| true);
        namespaces.start("", 10);
        for _ in 0..200 {
            if namespaces.present("held").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(namespaces.present("held").is_some(), "the copy has listed");
        assert_eq!((namespaces.copy().get("made"), namespaces.copy().get("other")), (Cached::Absent, Cached::Absent));

        namespaces.create(&PostParams::default(), &namespace("made")).await.expect("created");
        namespaces.apply(&namespace("held")).await.expect("applied");
        namespaces.delete("other", &DeleteParams::default()).await.expect("deleted");
        for name in ["made", "held", "other"] {
            assert_eq!(namespaces.copy().get(name), Cached::Unknown, "{name} is read from the cluster");
        }
    }
}
