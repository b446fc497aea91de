//! The generic OpenID Connect provider (K-PaaS: Keycloak): the verified ID token's `user_claim` (by default `email`)
//! is the member name an admin invited. Nothing is made here: who is not a member is told to ask for an invitation.

use super::Outcome;
use super::provider::{Provider, SetupError, Verified, http_client};
use crate::config::OidcSettings;
use crate::lifecycle::members::validate_name;

/// The generic provider and the claim that names its users.
pub struct OidcLogin {
    /// The provider.
    pub provider: Provider,
    user_claim: String,
}

impl OidcLogin {
    /// The provider `settings` describe, sending users back to `callback`.
    pub fn new(settings: &OidcSettings, callback: &str) -> Result<OidcLogin, SetupError> {
        let http = http_client(settings.ca_file.as_deref())?;
        let provider = Provider::new(
            &settings.issuer,
            &settings.client_id,
            &settings.client_secret,
            &settings.scopes,
            callback,
            http,
        )?;
        Ok(OidcLogin { provider, user_claim: settings.user_claim.clone() })
    }

    /// The member name of a verified user.
    pub fn member(&self, verified: &Verified) -> Result<String, Outcome> {
        member_name(&verified.claims, &self.user_claim)
    }
}

/// The member name in `claims`: the string value of `claim`; an email only once the provider has verified it; never a
/// name in the form reserved for Cloud Foundry's users.
fn member_name(claims: &serde_json::Value, claim: &str) -> Result<String, Outcome> {
    let name = claims.get(claim).and_then(serde_json::Value::as_str).ok_or(Outcome::NotInvited)?;
    if claim == "email" && claims.get("email_verified").and_then(serde_json::Value::as_bool) == Some(false) {
        return Err(Outcome::NotInvited);
    }
    validate_name(name, true).map_err(|_| Outcome::NotInvited)?;
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_claim_names_the_member_and_unverified_or_reserved_names_do_not() {
        let claims = json!({ "email": "alice@example.test", "email_verified": true, "preferred_username": "alice" });
        assert_eq!(member_name(&claims, "email"), Ok("alice@example.test".to_owned()));
        assert_eq!(member_name(&claims, "preferred_username"), Ok("alice".to_owned()));
        assert_eq!(member_name(&claims, "groups"), Err(Outcome::NotInvited), "no such claim");
        let unverified = json!({ "email": "alice@example.test", "email_verified": false });
        assert_eq!(member_name(&unverified, "email"), Err(Outcome::NotInvited));
        let reserved = json!({ "preferred_username": "cf:1234" });
        assert_eq!(member_name(&reserved, "preferred_username"), Err(Outcome::NotInvited), "no Cloud Foundry name");
        assert_eq!(member_name(&json!({ "n": 5 }), "n"), Err(Outcome::NotInvited), "not a string");
    }
}
