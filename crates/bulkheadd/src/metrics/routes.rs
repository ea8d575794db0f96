//! The route label of an API request: the HTTP method and the path
//! template of its command (names replaced by `{name}`), so the number of
//! series does not grow with the number of objects.

use bulkhead_api::Command;

/// `GET /v1/endpoints/{name}/acls` for `Command::AclList`, and so on.
pub fn route(cmd: &Command) -> &'static str {
    match cmd {
        Command::Health => "GET /v1/health",
        Command::NetworkCreate(_) => "POST /v1/networks",
        Command::NetworkList => "GET /v1/networks",
        Command::NetworkInspect { .. } => "GET /v1/networks/{name}",
        Command::NetworkRemove { .. } => "DELETE /v1/networks/{name}",
        Command::NamespaceCreate(_) => "POST /v1/namespaces",
        Command::NamespaceList => "GET /v1/namespaces",
        Command::NamespaceInspect { .. } => "GET /v1/namespaces/{name}",
        Command::NamespaceRemove { .. } => "DELETE /v1/namespaces/{name}",
        Command::EndpointCreate(_) => "POST /v1/endpoints",
        Command::EndpointList => "GET /v1/endpoints",
        Command::EndpointInspect { .. } => "GET /v1/endpoints/{name}",
        Command::EndpointRemove { .. } => "DELETE /v1/endpoints/{name}",
        Command::AclAdd { .. } => "POST /v1/endpoints/{name}/acls",
        Command::AclList { .. } => "GET /v1/endpoints/{name}/acls",
        Command::AclStats { .. } => "GET /v1/endpoints/{name}/acls?stats=true",
        Command::AclRemove { .. } => "DELETE /v1/endpoints/{name}/acls/{id}",
        Command::Trace(_) => "POST /v1/trace",
        Command::Import(_) => "POST /v1/import",
        Command::Events(_) => "POST /v1/events",
        Command::EndpointListAll => "GET /v1/endpoints?all_nodes=true",
        Command::NodeList => "GET /v1/nodes",
        Command::NodeRemove { .. } => "DELETE /v1/nodes/{name}",
    }
}

/// The outcome label of an answer: `ok`, or the error's code
/// (`not_found`, `bad_request`, …) as the API spells it.
pub fn outcome<T>(result: &Result<T, bulkhead_api::ApiError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => serde_json::to_value(e.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "error".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_label_is_the_template_the_client_encodes() {
        let named = |s: &str| s.to_owned();
        for cmd in [
            Command::NetworkInspect { name: named("web") },
            Command::EndpointRemove { name: named("ep1") },
            Command::AclRemove {
                endpoint: named("ep1"),
                id: named("r1"),
            },
        ] {
            let encoded = bulkhead_api::encode_request(&cmd).unwrap();
            let template = route(&cmd);
            let (method, path) = template.split_once(' ').unwrap();
            assert_eq!(method, encoded.method);
            let filled = path.replace("{name}", "web").replace("{name}", "ep1");
            let filled = filled.replace("{id}", "r1");
            let expect = encoded.path.replace("ep1", "web");
            assert_eq!(filled.replace("ep1", "web"), expect, "{template}");
        }
        let e = bulkhead_api::ApiError::not_found("x");
        assert_eq!(outcome::<()>(&Err(e)), "not_found");
    }
}
