//! `X-Broker-API-Originating-Identity`: who, on the platform, asked for this request. Parsed leniently and never
//! fatal (orphan mitigation and catalog fetches carry none). What it says, [`OriginatingIdentity`], is the broker's:
//! it is recorded on the instance and logged for audit.

use base64::Engine;
use serde_json::Value;

use crate::lifecycle::model::OriginatingIdentity;

/// The header's name.
pub const HEADER: &str = "x-broker-api-originating-identity";

/// Parses `<platform> <base64 JSON>` into who asked; `None` when the value is malformed.
pub fn parse(header: &str) -> Option<OriginatingIdentity> {
    let (platform, encoded) = header.trim().split_once(' ')?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded.trim()))
        .ok()?;
    let properties: Value = serde_json::from_slice(&decoded).ok()?;
    let key = match platform {
        "kubernetes" => "username",
        _ => "user_id",
    };
    let user = properties.get(key).and_then(Value::as_str).filter(|user| !user.is_empty()).map(str::to_owned);
    Some(OriginatingIdentity { platform: platform.to_owned(), user })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    #[test]
    fn cloud_foundry_and_kubernetes_forms() {
        let cf = parse(&format!("cloudfoundry {}", encode(r#"{"user_id":"683ea748-3092"}"#)));
        assert_eq!(cf.and_then(|i| i.user).as_deref(), Some("683ea748-3092"));
        let k8s = parse(&format!(
            "kubernetes {}",
            encode(r#"{"username":"duke","uid":"c2dde242","groups":["admin","dev"],"extra":{"mydata":["data1"]}}"#)
        ));
        assert_eq!(k8s, Some(OriginatingIdentity { platform: "kubernetes".into(), user: Some("duke".into()) }));
    }

    #[test]
    fn malformed_values_are_ignored() {
        for bad in ["", "cloudfoundry", "cloudfoundry !!!", &format!("cloudfoundry {}", encode("not json"))] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        let no_user = parse(&format!("cloudfoundry {}", encode("{}")));
        assert_eq!(no_user.and_then(|i| i.user), None);
    }
}
