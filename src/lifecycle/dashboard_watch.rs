//! The broker's own right to watch a tenant namespace, which the dashboard's live view needs: one watch per namespace
//! and kind, made with the broker's identity and shared by every viewer, instead of one per viewer made with theirs.
//! The right is a RoleBinding of a ClusterRole in each tenant namespace (see
//! [`crate::k8s::virtual_cluster::dashboard_watch_binding`]), never a cluster-wide grant: made at provision, and for
//! instances made before it, when their dashboard's first live viewer comes.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::PostParams;

use super::{Broker, Error, Result};
use crate::k8s::apply;
use crate::k8s::virtual_cluster::dashboard_watch_binding;

impl Broker {
    /// Grants the broker the dashboard's watch in the namespace of `instance_id` (idempotent: a server-side apply).
    pub async fn allow_dashboard_watch(&self, instance_id: &str) -> Result<()> {
        self.apply_dashboard_watch(&self.namespace_of(instance_id), instance_id).await
    }

    /// Applies the broker's watch RoleBinding in `namespace`, the namespace of `instance_id`.
    pub(super) async fn apply_dashboard_watch(&self, namespace: &str, instance_id: &str) -> Result<()> {
        let binding = self.dashboard_watch_wanted(namespace, instance_id).await?;
        apply(&Api::<RoleBinding>::namespaced(self.client.clone(), namespace), &binding).await?;
        Ok(())
    }

    /// The broker's watch RoleBinding as it should be in `namespace`, the namespace of `instance_id` (what provision
    /// applies, and drift repair puts back).
    pub(super) async fn dashboard_watch_wanted(&self, namespace: &str, instance_id: &str) -> Result<RoleBinding> {
        let user = self.own_user().await?;
        let role = &self.options.dashboard_watch_role;
        Ok(dashboard_watch_binding(namespace, instance_id, role, &user))
    }

    /// The broker's own Kubernetes user name, as the apiserver authenticates it (a SelfSubjectReview, which every
    /// authenticated identity may make), asked once: the subject of its watch RoleBindings, whatever credential it
    /// runs with (a ServiceAccount in the cluster, a certificate outside it).
    async fn own_user(&self) -> Result<String> {
        let user = self
            .own_user
            .get_or_try_init(|| async {
                let reviews = Api::<SelfSubjectReview>::all(self.client.clone());
                let review = reviews.create(&PostParams::default(), &SelfSubjectReview::default()).await?;
                review
                    .status
                    .and_then(|status| status.user_info?.username)
                    .ok_or_else(|| Error::internal("the apiserver did not say who the broker is".to_owned()))
            })
            .await?;
        Ok(user.clone())
    }
}
