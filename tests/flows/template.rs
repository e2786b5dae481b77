//! The SAM template and the code agree: every route of the route table
//! (`oauth_core::http::routes::ROUTES`) is routed to the function that owns it, CORS routes
//! have their `OPTIONS` route, the template routes nothing else, and every function in the
//! template exists in `functions/`.
use oauth_core::http::routes::ROUTES;
use serde_yaml::Value;

const TEMPLATE: &str = include_str!("../../template.yaml");

fn template() -> anyhow::Result<Value> {
    Ok(serde_yaml::from_str(TEMPLATE)?)
}

/// `paths` of the HTTP API's OpenAPI body.
fn api_paths(t: &Value) -> anyhow::Result<&serde_yaml::Mapping> {
    t["Resources"]["HttpApi"]["Properties"]["DefinitionBody"]["paths"]
        .as_mapping()
        .ok_or_else(|| anyhow::anyhow!("the HttpApi has no DefinitionBody paths"))
}

/// The function an operation's integration invokes (`...:function:${AWS::StackName}-<fn>/invocations`).
fn integration_function(op: &Value) -> Option<String> {
    let uri = &op["x-amazon-apigateway-integration"]["uri"];
    // `!Sub <string>` parses as a tagged value.
    let text = match uri {
        Value::Tagged(t) => t.value.as_str()?,
        other => other.as_str()?,
    };
    let rest = text.split("${AWS::StackName}-").nth(1)?;
    rest.strip_suffix("/invocations").map(str::to_owned)
}

#[test]
fn every_route_of_the_table_is_routed_to_its_function_and_nothing_else_is() -> anyhow::Result<()> {
    let t = template()?;
    let paths = api_paths(&t)?;
    let mut expected = Vec::new();
    for route in ROUTES {
        let mut methods: Vec<&str> = route.allow().split(", ").collect();
        if route.cors() {
            methods.push("OPTIONS");
        }
        for m in methods {
            expected.push((m.to_ascii_lowercase(), route.path.to_owned(), route.function.name().to_owned()));
        }
    }
    let mut routed = Vec::new();
    for (path, ops) in paths {
        let path = path.as_str().ok_or_else(|| anyhow::anyhow!("a path that is not a string"))?;
        for (method, op) in ops.as_mapping().into_iter().flatten() {
            let method = method.as_str().unwrap_or_default().to_owned();
            let function = integration_function(op).unwrap_or_else(|| format!("<no function for {method} {path}>"));
            routed.push((method, path.to_owned(), function));
        }
    }
    expected.sort();
    routed.sort();
    assert_eq!(routed, expected, "the template's routes (left) and the route table's (right)");
    assert!(expected.len() >= 15, "{expected:?}");
    Ok(())
}

#[test]
fn every_function_in_the_template_exists_and_builds_its_own_binary() -> anyhow::Result<()> {
    let t = template()?;
    let resources = t["Resources"].as_mapping().ok_or_else(|| anyhow::anyhow!("no Resources"))?;
    let functions: Vec<&Value> =
        resources.values().filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function")).collect();
    let mut binaries = Vec::new();
    for f in &functions {
        assert_eq!(f["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"));
        let b = f["Metadata"]["BuildProperties"]["Binary"].as_str().ok_or_else(|| anyhow::anyhow!("no Binary"))?;
        let manifest =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("functions").join(b).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap_or_default();
        assert!(text.contains(&format!("name = \"{b}\"")), "{b}: no crate at {}", manifest.display());
        binaries.push(b);
    }
    let mut expected = ["register", "authorize", "token", "protected", "discovery", "authorizer", "rotate-keys"];
    binaries.sort_unstable();
    expected.sort_unstable();
    assert_eq!(binaries, expected);
    assert_eq!(t["Globals"]["Function"]["Runtime"].as_str(), Some("provided.al2023"));
    Ok(())
}

/// `openapi.yaml` describes exactly the routes the table has: same paths, same methods
/// (CORS preflights are not operations of the contract).
#[test]
fn the_openapi_description_has_exactly_the_routes_of_the_table() -> anyhow::Result<()> {
    let doc: Value = serde_yaml::from_str(include_str!("../../openapi.yaml"))?;
    let paths = doc["paths"].as_mapping().ok_or_else(|| anyhow::anyhow!("openapi.yaml has no paths"))?;
    let mut described = Vec::new();
    for (path, item) in paths {
        for (key, _) in item.as_mapping().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            if ["get", "post", "put", "delete", "patch", "head", "options", "trace"].contains(&key) {
                described.push((key.to_ascii_uppercase(), path.as_str().unwrap_or_default().to_owned()));
            }
        }
    }
    let mut served: Vec<(String, String)> =
        oauth_core::http::routes().into_iter().map(|(m, p)| (m.to_owned(), p.to_owned())).collect();
    described.sort();
    served.sort();
    assert_eq!(described, served, "openapi.yaml (left) and the route table (right)");
    Ok(())
}
