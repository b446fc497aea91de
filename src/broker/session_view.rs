//! A streaming session as the tenant signed in to its virtual cluster sees it: where it stands (the same words the
//! platform's `last_operation` gives), its plan and resolution, the pod whose SteamCMD step installs it, and where a
//! browser reaches its noVNC page. Only sessions placed in the tenant's own virtual cluster are found; the VNC password
//! is read with the tenant's own client, so Kubernetes decides who sees it (whoever may `get secrets` there).

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::actions::user_error;
use super::model::LastOperation;
use super::{Broker, Error, Result, Tenant};
use crate::k8s::workload::{StreamingSession, VNC_PASSWORD_KEY};

/// The name of the SteamCMD init container of a session that installs its application.
pub const INSTALL_CONTAINER: &str = "steamcmd";

/// One streaming session of the signed-in tenant's virtual cluster.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// The session instance's id.
    pub instance_id: String,
    /// Its offering, as the catalog names it.
    pub service_name: String,
    /// Its plan, as the catalog names it.
    pub plan_name: String,
    /// Where it stands, as the platform reads it.
    pub state: LastOperation,
    /// Whether it was asked to be stopped (its volume is kept).
    pub stopped: bool,
    /// Its virtual display, `WIDTHxHEIGHT`.
    pub resolution: String,
    /// The name of its StatefulSet and Service.
    pub name: String,
    /// Its one pod.
    pub pod: String,
    /// Whether a SteamCMD step installs its application (else the image holds it).
    pub installs: bool,
    /// The host of its Ingress, if it has one: where a browser reaches its noVNC page.
    pub ingress_host: Option<String>,
}

impl SessionView {
    /// The noVNC page of a session with an Ingress, opened with `password` in the URL's fragment: a browser does not
    /// send a fragment to any server, so the password stays out of every access log, and noVNC reads its settings
    /// from the fragment before the query.
    pub fn novnc_url(&self, password: &str) -> Option<String> {
        let host = self.ingress_host.as_ref()?;
        Some(format!(
            "https://{host}/vnc.html#autoconnect=1&resize=remote&password={}",
            super::percent_encode(password)
        ))
    }
}

impl Broker {
    /// The streaming session `session_id` of the signed-in tenant's virtual cluster; not found alike for an id that
    /// is no session and a session of another virtual cluster.
    pub async fn streaming_session(&self, tenant: &Tenant, session_id: &str) -> Result<SessionView> {
        let (record, session) = self.session_of(tenant, session_id).await?;
        let service = self.workload_service(&record)?.0;
        let state = self.workload_state(service, &record).await?;
        let attributes = &record.stored.attributes;
        let (service_name, plan_name) = self.plan_names(&attributes.service_id, &attributes.plan_id);
        let name = session.workload.name.clone();
        Ok(SessionView {
            instance_id: record.stored.instance_id.clone(),
            service_name,
            plan_name,
            state,
            stopped: !session.workload.running,
            resolution: session.resolution.clone(),
            pod: format!("{name}-0"),
            name,
            installs: session.steam_app_id.is_some(),
            ingress_host: session.workload.ingress_host.clone(),
        })
    }

    /// The VNC password of the session `session_id`, read with the tenant's own client: refused (denied) when
    /// Kubernetes does not let the tenant's identity read the session's Secret.
    pub async fn session_password(&self, user: &Client, tenant: &Tenant, session_id: &str) -> Result<String> {
        let (_, session) = self.session_of(tenant, session_id).await?;
        let secret = Api::<Secret>::namespaced(user.clone(), &tenant.namespace)
            .get(&session.vnc_secret_name())
            .await
            .map_err(user_error)?;
        let password = secret.data.and_then(|data| data.get(VNC_PASSWORD_KEY).map(|p| p.0.clone()));
        password
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| Error::Concurrency("the session's password is not there yet; retry".to_owned()))
    }

    /// The record and objects of `session_id` if it is a streaming session placed in `tenant`'s virtual cluster.
    async fn session_of(
        &self,
        tenant: &Tenant,
        session_id: &str,
    ) -> Result<(super::workloads::WorkloadRecord, StreamingSession)> {
        let not_found = || Error::NotFound(format!("there is no streaming session {session_id} in this cluster"));
        let record = self.workload(session_id).await?.ok_or_else(not_found)?;
        if record.cluster_instance_id != tenant.instance_id || record.namespace != tenant.namespace {
            return Err(not_found());
        }
        let session = self.streaming_session_of(&record)?.ok_or_else(not_found)?;
        Ok((record, session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::model::OperationState;

    #[test]
    fn the_password_goes_in_the_fragment_and_only_to_an_ingress() {
        let mut view = SessionView {
            instance_id: "s".to_owned(),
            service_name: "streaming-session".to_owned(),
            plan_name: "cpu-720p".to_owned(),
            state: LastOperation::new(OperationState::Succeeded, "1 of 1 pods ready"),
            stopped: false,
            resolution: "1280x720".to_owned(),
            name: "session-s".to_owned(),
            pod: "session-s-0".to_owned(),
            installs: true,
            ingress_host: None,
        };
        assert_eq!(view.novnc_url("pw"), None);
        view.ingress_host = Some("play.example.com".to_owned());
        let url = view.novnc_url("a&b#c").expect("url");
        assert_eq!(url, "https://play.example.com/vnc.html#autoconnect=1&resize=remote&password=a%26b%23c");
        assert!(!url.contains('?'), "nothing a server would log");
    }
}
