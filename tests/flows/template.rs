//! The SAM template and the code agree: every route of API.md is routed to the function
//! that serves it, and every function in the template exists in `functions/`.
use oauth_core::http::routes;

const TEMPLATE: &str = include_str!("../../template.yaml");

/// The function each route's integration names in the OpenAPI body (`${AWS::StackName}-<fn>`).
fn routed_function(path: &str, method: &str) -> Option<String> {
    let path_line = format!("          {path}:");
    let method_line = format!("            {}:", method.to_ascii_lowercase());
    let mut lines = TEMPLATE.lines().skip_while(|l| l.trim_end() != path_line).skip(1);
    let mut in_method = false;
    for line in lines.by_ref() {
        let indent = line.len() - line.trim_start().len();
        if indent <= 10 {
            return None; // the next path, or the end of the paths
        }
        if indent == 12 {
            in_method = line.trim_end() == method_line;
        }
        if in_method && let Some(i) = line.find("${AWS::StackName}-") {
            let rest = line.get(i + "${AWS::StackName}-".len()..).unwrap_or_default();
            return Some(
                rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).next().unwrap_or_default().to_owned(),
            );
        }
    }
    None
}

#[test]
fn every_route_of_the_contract_is_routed_to_its_function() {
    // The routes the code serves are API.md's; the template must route each one.
    let expected = [
        ("POST", "/register", "register"),
        ("POST", "/register_client", "register"),
        ("GET", "/oauth/authorize", "authorize"),
        ("POST", "/oauth/authorize", "authorize"),
        ("POST", "/oauth/token", "token"),
        ("POST", "/oauth/revoke", "token"),
        ("POST", "/oauth/introspect", "token"),
        ("GET", "/oauth/userinfo", "protected"),
        ("GET", "/api/data", "protected"),
        ("POST", "/api/data", "protected"),
        ("GET", "/", "discovery"),
        ("GET", "/.well-known/oauth-authorization-server", "discovery"),
        ("GET", "/.well-known/openid-configuration", "discovery"),
        ("GET", "/.well-known/jwks.json", "discovery"),
        ("GET", "/openapi.yaml", "discovery"),
    ];
    for (method, path) in routes() {
        assert!(
            expected.iter().any(|(m, p, _)| *m == method && *p == path),
            "{method} {path} is served but not in this test's list"
        );
    }
    for (method, path, function) in expected {
        assert_eq!(routed_function(path, method).as_deref(), Some(function), "{method} {path}");
    }
}

#[test]
fn every_function_in_the_template_exists_and_builds_its_own_binary() {
    let binaries: Vec<&str> = TEMPLATE.lines().filter_map(|l| l.trim().strip_prefix("Binary: ")).collect();
    assert!(binaries.len() >= 7, "{binaries:?}");
    for b in &binaries {
        let manifest =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("functions").join(b).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap_or_default();
        assert!(text.contains(&format!("name = \"{b}\"")), "{b}: no crate at {}", manifest.display());
    }
    for f in ["register", "authorize", "token", "protected", "discovery", "authorizer", "rotate-keys"] {
        assert!(binaries.contains(&f), "functions/{f} is not in the template");
    }
    assert!(TEMPLATE.contains("BuildMethod: rust-cargolambda"));
    assert!(TEMPLATE.contains("provided.al2023"));
}
