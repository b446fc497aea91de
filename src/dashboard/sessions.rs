//! Signed-in users, in this process's memory only: a random id (the cookie) to the user's virtual cluster and a
//! client carrying their token. Bounded and expiring, so neither a flood of sign-ins nor time lets tokens pile up; a
//! restart signs everyone out, which costs a paste of the token.

use std::time::Duration;

use super::expiring::Expiring;

use crate::broker::Tenant;

/// One signed-in user.
#[derive(Clone)]
pub struct Session {
    /// The virtual cluster signed in to.
    pub tenant: Tenant,
    /// A client that authenticates as the user (their token), for every read made for them.
    pub client: kube::Client,
}

impl Session {
    /// The path of the signed-in instance's dashboard, which its pages' links start with.
    pub fn base_path(&self) -> String {
        format!("/instances/{}", crate::broker::percent_encode(&self.tenant.instance_id))
    }
}

/// Every session, by id.
pub struct Sessions(Expiring<Session>);

impl Sessions {
    /// No session yet; each will last `lifetime`, and at most `max` are held.
    pub fn new(lifetime: Duration, max: usize) -> Sessions {
        Sessions(Expiring::new(lifetime, max))
    }

    /// How long a new session lasts (the cookie's Max-Age).
    pub fn lifetime(&self) -> Duration {
        self.0.lifetime()
    }

    /// Starts a session and returns its id (256 random bits, hex); when full, the one closest to expiring goes.
    pub fn start(&self, tenant: Tenant, client: kube::Client) -> Result<String, getrandom::Error> {
        self.0.insert(Session { tenant, client })
    }

    /// The live session with this id; an expired one is forgotten.
    pub fn find(&self, id: &str) -> Option<Session> {
        self.0.get(id)
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.0.remove(id);
    }
}

/// A signed-in session of instance `instance_id` for the pages' unit tests, its client pointing nowhere.
#[cfg(test)]
pub fn test_session(instance_id: &str) -> Session {
    let tenant = Tenant {
        instance_id: instance_id.to_owned(),
        namespace: "caas-inst-1".to_owned(),
        service_name: "caas".to_owned(),
        plan_name: "small".to_owned(),
        username: "system:serviceaccount:ids:caas-binding-b".to_owned(),
        account: "caas-binding-b".to_owned(),
        member: None,
    };
    let client =
        kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().expect("url"))).expect("client");
    let sessions = Sessions::new(Duration::from_secs(60), 1);
    let id = sessions.start(tenant, client).expect("id");
    sessions.find(&id).expect("session")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> Tenant {
        Tenant {
            instance_id: id.to_owned(),
            namespace: format!("caas-{id}"),
            service_name: "caas".to_owned(),
            plan_name: "small".to_owned(),
            username: "system:serviceaccount:ids:x".to_owned(),
            account: "x".to_owned(),
            member: None,
        }
    }

    fn client() -> kube::Client {
        let config = kube::Config::new("https://127.0.0.1:1".parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }

    #[tokio::test]
    async fn sessions_are_random_bounded_and_expire() {
        let sessions = Sessions::new(Duration::from_secs(60), 2);
        let first = sessions.start(tenant("a"), client()).expect("id");
        let second = sessions.start(tenant("b"), client()).expect("id");
        assert_eq!(first.len(), 64);
        assert_ne!(first, second);
        assert_eq!(sessions.find(&first).map(|s| s.tenant.instance_id), Some("a".to_owned()));
        let third = sessions.start(tenant("c"), client()).expect("id");
        assert!(sessions.find(&first).is_none(), "the oldest goes when full");
        assert!(sessions.find(&second).is_some() && sessions.find(&third).is_some());
        sessions.end(&second);
        assert!(sessions.find(&second).is_none());

        let short = Sessions::new(Duration::from_millis(1), 10);
        let id = short.start(tenant("a"), client()).expect("id");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(short.find(&id).is_none(), "expired");
        assert!(short.find("not-an-id").is_none());
    }
}
