//! What the signed-in user may do in their namespace beyond reading it, asked of Kubernetes once at sign-in so that
//! every page shows only the controls its user can use (a change of role ends the session, so the answer holds for
//! its life). Kubernetes still decides each action: this only spares a user a control that would be refused.

use kube::Client;

use crate::k8s::access::{self, Permission};

/// The controls a signed-in user may be offered on every page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abilities {
    /// Whether they may create Deployments (the deploy form).
    pub deploy: bool,
    /// Whether they may reach their Services through the apiserver's proxy (the endpoint tester).
    pub send_requests: bool,
}

impl Abilities {
    /// Every control offered: what a session shows when the apiserver could not be asked (it still refuses what the
    /// user may not do).
    pub const ALL: Abilities = Abilities { deploy: true, send_requests: true };

    /// What the user of `client` may do in `namespace`, asked with SelfSubjectAccessReviews.
    pub async fn of(client: &Client, namespace: &str) -> Abilities {
        let deploy = Permission { verb: "create", group: "apps", resource: "deployments" };
        let proxy = Permission { verb: "get", group: "", resource: "services" };
        let (deploy, send_requests) = tokio::join!(
            access::allowed(client, namespace, deploy),
            access::allowed_on(client, namespace, proxy, Some("proxy"))
        );
        Abilities { deploy: deploy.unwrap_or(true), send_requests: send_requests.unwrap_or(true) }
    }
}
