//! Unit tests of the authorizer's rules and event handling.
use super::*;

#[test]
fn scope_rules_match_exact_routes_and_deny_the_rest() -> Result<(), ConfigError> {
    let rules = ScopeRules::parse("GET /api/data=data:read; POST /api/data=data:write;GET /whoami=")?;
    assert_eq!(rules.required("GET /api/data").map(ToString::to_string).as_deref(), Some("data:read"));
    assert_eq!(rules.required("GET /whoami").map(ToString::to_string).as_deref(), Some(""));
    for unmatched in ["DELETE /x", "POST /api/data/", "$default", "ANY /{proxy+}", "get /api/data", ""] {
        assert!(rules.required(unmatched).is_none(), "{unmatched:?} has no rule: denied");
    }
    assert_eq!(rules.open_routes().collect::<Vec<_>>(), ["GET /whoami"]);
    // A team's own scopes (once refused at cold start, so every request got 500).
    let own = ScopeRules::parse("GET /orders=orders:read")?;
    assert_eq!(own.required("GET /orders").map(ToString::to_string).as_deref(), Some("orders:read"));
    for bad in
        ["GET /x", "GET /x=ad\"min", "*=", "GET /x=;*=data:read", "GET /x=;GET /x=data:read", "", " ; ", "=data:read"]
    {
        assert!(ScopeRules::parse(bad).is_err(), "{bad:?}");
    }
    Ok(())
}

#[test]
fn revocation_is_on_unless_turned_off_by_name_and_needs_a_table() -> Result<(), ConfigError> {
    use crate::config::{Backends, StoreChoice};
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    };
    assert_eq!(Revocation::from_lookup(vars(&[]))?, Revocation::Checked);
    assert_eq!(Revocation::from_lookup(vars(&[("AUTHORIZER_REVOCATION", "off")]))?, Revocation::Off);
    assert!(Revocation::from_lookup(vars(&[("AUTHORIZER_REVOCATION", "no")])).is_err());
    let jwks = [("OAUTH_KEYS", "jwks"), ("AUTHORIZER_JWKS_URL", "https://as.example/.well-known/jwks.json")];
    // Another account's copy without a table: it starts only with revocation off.
    let off: &'static [(&str, &str)] = Box::leak(Box::new([jwks[0], jwks[1], ("AUTHORIZER_REVOCATION", "off")]));
    let b = Backends::from_lookup(vars(off), true)?;
    assert_eq!(b.store, StoreChoice::None);
    assert!(Revocation::Off.check_store(&b.store).is_ok());
    assert!(Revocation::Checked.check_store(&StoreChoice::None).is_err());
    let on: &'static [(&str, &str)] = Box::leak(Box::new(jwks));
    assert!(Backends::from_lookup(vars(on), true).is_err(), "no table and revocation on: TABLE_NAME is missing");
    let table: &'static [(&str, &str)] =
        Box::leak(Box::new([jwks[0], jwks[1], ("TABLE_NAME", "arn:aws:dynamodb:us-east-1:111:table/oauth")]));
    assert!(matches!(Backends::from_lookup(vars(table), true)?.store, StoreChoice::DynamoDb(_)));
    Ok(())
}

#[test]
fn method_arns_name_their_route() {
    assert_eq!(
        route_of_method_arn("arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/data").as_deref(),
        Some("GET /api/data")
    );
    assert_eq!(route_of_method_arn("arn:aws:execute-api:us-east-1:1:a/prod/POST/").as_deref(), Some("POST /"));
    assert_eq!(route_of_method_arn("garbage"), None);
}
