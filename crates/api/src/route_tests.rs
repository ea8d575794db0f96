//! Unit tests of the route decoder and encoder.

use super::*;
use crate::request::*;
use serde_json::json;

fn ok(method: &str, path: &str, body: &str) -> Command {
    decode_request(method, path, body.as_bytes()).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn err(method: &str, path: &str, body: &str) -> ApiError {
    let e = decode_request(method, path, body.as_bytes()).unwrap_err();
    assert!(
        !e.message.contains('\n'),
        "multi-line error: {:?}",
        e.message
    );
    e
}

fn sample_commands() -> Vec<Command> {
    vec![
        Command::Health,
        Command::NetworkCreate(NetworkSpec {
            name: "n1".into(),
            driver: "nat".into(),
            subnets: vec!["10.1.0.0/24".into()],
            gateway: Some("10.1.0.1".into()),
            uplink: Some("eth9".into()),
            vni: Some("4096".into()),
            acl_profile: Some("legacy".into()),
        }),
        Command::NetworkList,
        Command::NetworkInspect { name: "n1".into() },
        Command::NetworkRemove { name: "n1".into() },
        Command::NamespaceCreate(NamespaceSpec {
            name: "pod".into(),
            isolation: Some("vm".into()),
            ..NamespaceSpec::default()
        }),
        Command::NamespaceList,
        Command::NamespaceInspect { name: "pod".into() },
        Command::NamespaceRemove { name: "pod".into() },
        Command::EndpointCreate(EndpointSpec {
            name: "ep".into(),
            network: "n1".into(),
            namespace: "pod".into(),
            ip: Some("10.1.0.5".into()),
            mac: Some("02:00:00:00:00:05".into()),
            publish: vec!["8080:80".into(), "127.0.0.1:53:53/udp".into()],
            acl_mode: Some("replace".into()),
            ifname: Some("eth1".into()),
            container_id: Some("abc".into()),
            tap_owner: Some("1000".into()),
            tap_group: Some("100".into()),
            tap_queues: Some("4".into()),
        }),
        Command::EndpointList,
        Command::EndpointListAll,
        Command::NodeList,
        Command::NodeRemove {
            name: "node-a".into(),
        },
        Command::EndpointInspect { name: "ep".into() },
        Command::EndpointRemove { name: "ep".into() },
        Command::AclAdd {
            endpoint: "ep".into(),
            rule: AclRuleSpec {
                direction: "in".into(),
                action: "block".into(),
                protocol: Some("tcp".into()),
                local_ports: Some("80,1000-2000".into()),
                remote_ports: Some("53".into()),
                local_addresses: Some("10.1.0.5".into()),
                remote_addresses: Some("10.0.0.0/8,192.168.1.1".into()),
                priority: Some("100".into()),
                rule_type: Some("switch".into()),
                id: Some("r1".into()),
            },
        },
        Command::AclList {
            endpoint: "ep".into(),
        },
        Command::AclStats {
            endpoint: "ep".into(),
        },
        Command::AclRemove {
            endpoint: "ep".into(),
            id: "r1".into(),
        },
        Command::Trace(TraceSpec {
            from: "ep".into(),
            to: "10.1.0.9".into(),
            protocol: "udp".into(),
            port: Some("53".into()),
            ..Default::default()
        }),
        Command::Trace(TraceSpec {
            from: "ep".into(),
            to: "192.0.2.1:8080".into(),
            protocol: "tcp".into(),
            source_ip: Some("10.1.0.99".into()),
            source_port: Some("68".into()),
            established: true,
            ..Default::default()
        }),
        Command::Import(ImportRequest {
            document: json!({"Networks": [{"Name": "x"}]}),
        }),
    ]
}

#[test]
fn encode_then_decode_is_identity_for_every_command() {
    for cmd in sample_commands() {
        let req = encode_request(&cmd).unwrap();
        let body = req.body.clone().unwrap_or_default();
        let back = decode_request(req.method, &req.path, &body).unwrap();
        assert_eq!(back, cmd, "{} {}", req.method, req.path);
    }
}

#[test]
fn names_that_look_like_paths_stay_one_segment() {
    let cmd = Command::AclRemove {
        endpoint: "a/b c%".into(),
        id: "../x?y".into(),
    };
    let req = encode_request(&cmd).unwrap();
    assert_eq!(req.path, "/v1/endpoints/a%2Fb%20c%25/acls/..%2Fx%3Fy");
    assert_eq!(decode_request("DELETE", &req.path, b"").unwrap(), cmd);
}

#[test]
fn routes_decode_to_their_commands() {
    assert_eq!(ok("GET", "/v1/health", ""), Command::Health);
    // A trailing `/` is an empty name, not the collection: refusing it keeps
    // `network inspect ""` from turning into `network ls`.
    assert!(decode_request("GET", "/v1/networks/", b"").is_err());
    assert_eq!(
        ok("GET", "/v1/endpoints/web/acls", ""),
        Command::AclList {
            endpoint: "web".into()
        }
    );
    let cmd = ok(
        "POST",
        "/v1/networks",
        r#"{"name":"n","driver":"overlay","vni":4096}"#,
    );
    let Command::NetworkCreate(r) = cmd else {
        panic!("wrong command")
    };
    assert_eq!(r.vni.as_deref(), Some("4096"));
    let cmd = ok(
        "POST",
        "/v1/endpoints/web/acls",
        r#"{"direction":"in","action":"allow","protocol":6,"local_ports":[80,"443"],"priority":5}"#,
    );
    let Command::AclAdd { endpoint, rule } = cmd else {
        panic!("wrong command")
    };
    assert_eq!(endpoint, "web");
    assert_eq!(rule.protocol.as_deref(), Some("6"));
    assert_eq!(rule.local_ports.as_deref(), Some("80,443"));
    assert_eq!(rule.priority.as_deref(), Some("5"));
    let cmd = ok(
        "POST",
        "/v1/trace",
        r#"{"from":"a","to":"b","protocol":"icmp"}"#,
    );
    assert!(matches!(cmd, Command::Trace(TraceSpec { port: None, .. })));
}

#[test]
fn unknown_routes_are_not_found() {
    for path in [
        "/",
        "/v2/networks",
        "/v1",
        "/v1/",
        "/v1/bogus",
        "/v1/networks/a/b",
        "/v1//networks",
        "/v1/networks//",
        "/v1/endpoints/a/acls/b/c",
        "/v1/networks/%zz",
        "/v1/networks/%+1",
        "/v1/networks/%ff",
        "/v1/networks/%4",
    ] {
        let e = err("GET", path, "");
        assert_eq!(e.code, ErrorCode::NotFound, "{path}: {e}");
        assert!(e.message.contains(path), "{e}");
    }
}

#[test]
fn wrong_methods_are_refused_with_the_allowed_ones() {
    let e = err("PUT", "/v1/networks", "");
    assert_eq!(e.code, ErrorCode::MethodNotAllowed);
    assert!(e.message.contains("allowed: GET, POST"), "{e}");
    assert_eq!(
        err("POST", "/v1/health", "").code,
        ErrorCode::MethodNotAllowed
    );
    assert_eq!(
        err("GET", "/v1/trace", "").code,
        ErrorCode::MethodNotAllowed
    );
    assert_eq!(
        err("GET", "/v1/endpoints/e/acls/1", "").code,
        ErrorCode::MethodNotAllowed
    );
    assert_eq!(
        err("DELETE", "/v1/networks", "").code,
        ErrorCode::MethodNotAllowed
    );
}

#[test]
fn body_errors_name_the_field() {
    let cases = [
        (
            "/v1/networks",
            r#"{"driver":"nat"}"#,
            "missing field `name`",
        ),
        ("/v1/networks", r#"{"name":"n"}"#, "missing field `driver`"),
        (
            "/v1/networks",
            r#"{"name":"n","driver":"nat","mtu":1}"#,
            "unknown field `mtu`",
        ),
        ("/v1/networks", r#"{"name":5,"driver":"nat"}"#, "`name`"),
        (
            "/v1/networks",
            r#"{"name":"n","driver":"nat","vni":true}"#,
            "`vni`",
        ),
        (
            "/v1/networks",
            r#"{"name":"n","driver":"nat","subnet":["a"]}"#,
            "`subnet`",
        ),
        (
            "/v1/namespaces",
            r#"{"name":"n","isolation":1}"#,
            "`isolation`",
        ),
        (
            "/v1/namespaces",
            r#"{"name":"n","compartment":1}"#,
            "unknown field `compartment`",
        ),
        (
            "/v1/endpoints",
            r#"{"name":"e","network":"n"}"#,
            "missing field `namespace`",
        ),
        (
            "/v1/endpoints",
            r#"{"name":"e","network":"n","namespace":"s","publish":"80:80"}"#,
            "`publish`",
        ),
        (
            "/v1/endpoints",
            r#"{"name":"e","network":"n","namespace":"s","publish":[80]}"#,
            "`publish[0]`",
        ),
        (
            "/v1/endpoints/e/acls",
            r#"{"action":"allow"}"#,
            "missing field `direction`",
        ),
        (
            "/v1/endpoints/e/acls",
            r#"{"direction":"in","action":"allow","local_ports":{"a":1}}"#,
            "`local_ports`",
        ),
        (
            "/v1/endpoints/e/acls",
            r#"{"direction":"in","action":"allow","priority":[1]}"#,
            "`priority`",
        ),
        (
            "/v1/endpoints/e/acls",
            r#"{"direction":"in","action":"allow","endpoint":"e"}"#,
            "unknown field `endpoint`",
        ),
        (
            "/v1/trace",
            r#"{"from":"a","to":"b"}"#,
            "missing field `protocol`",
        ),
        (
            "/v1/trace",
            r#"{"from":"a","to":"b","protocol":null}"#,
            "`protocol`",
        ),
        (
            "/v1/trace",
            r#"{"from":"a","to":"b","protocol":"tcp","port":{}}"#,
            "`port`",
        ),
    ];
    for (path, body, needle) in cases {
        let e = err("POST", path, body);
        assert_eq!(e.code, ErrorCode::BadRequest, "{path} {body}: {e}");
        assert!(e.message.contains(needle), "{path} {body}: {e}");
        assert!(e.message.starts_with(&format!("POST {path}: ")), "{e}");
    }
}

#[test]
fn malformed_bodies_are_bad_requests() {
    for body in [
        "",
        "  \n",
        "{",
        "[]",
        "null",
        "42",
        r#"{"name":"n","driver":"nat"} x"#,
        "\u{0}",
    ] {
        let e = err("POST", "/v1/networks", body);
        assert_eq!(e.code, ErrorCode::BadRequest, "{body:?}: {e}");
    }
    let e = err("POST", "/v1/import", "");
    assert!(e.message.contains("needs a JSON body"), "{e}");
    let e = err("POST", "/v1/import", "{\"a\":");
    assert_eq!(e.code, ErrorCode::BadRequest);
}

#[test]
fn bodies_on_get_and_delete_are_refused() {
    let e = err("GET", "/v1/networks", "{}");
    assert!(e.message.contains("takes no body"), "{e}");
    assert_eq!(
        err("DELETE", "/v1/networks/x", "{}").code,
        ErrorCode::BadRequest
    );
}

#[test]
fn query_strings_are_refused() {
    let e = err("GET", "/v1/networks?all=1", "");
    assert!(e.message.contains("query parameters"), "{e}");
}

#[test]
fn acl_stats_is_the_only_query() {
    assert_eq!(
        ok("GET", "/v1/endpoints/web/acls?stats=true", ""),
        Command::AclStats {
            endpoint: "web".into()
        }
    );
    assert_eq!(
        ok("GET", "/v1/endpoints/web/acls?stats=false", ""),
        Command::AclList {
            endpoint: "web".into()
        }
    );
    let e = err("GET", "/v1/endpoints/web/acls?stats=1", "");
    assert!(
        e.message.contains("allowed: stats=true, stats=false"),
        "{e}"
    );
    let e = err("POST", "/v1/endpoints/web/acls?stats=true", "{}");
    assert!(e.message.contains("query parameters"), "{e}");
    let e = err("GET", "/v1/endpoints/web?stats=true", "");
    assert!(e.message.contains("query parameters"), "{e}");
}

#[test]
fn oversized_bodies_are_refused_per_route() {
    let big = vec![b' '; MAX_BODY + 1];
    let e = decode_request("POST", "/v1/networks", &big).unwrap_err();
    assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    assert!(e.message.contains("over the limit of 1048576 bytes"), "{e}");
    // The same size is fine for an import (it fails later, as an empty body).
    let e = decode_request("POST", "/v1/import", &big).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    let huge = vec![b' '; MAX_IMPORT_BODY + 1];
    let e = decode_request("POST", "/v1/import", &huge).unwrap_err();
    assert_eq!(e.code, ErrorCode::PayloadTooLarge);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let inputs: [&[u8]; 5] = [
        b"\xff\xfe",
        b"{\"name\":\"\xff\"}",
        b"[[[[[[[[",
        b"{}",
        b"\"x\"",
    ];
    for body in inputs {
        for path in [
            "/v1/networks",
            "/v1/import",
            "/v1/trace",
            "/v1/endpoints/e/acls",
        ] {
            let _ = decode_request("POST", path, body);
        }
    }
    let _ = decode_request("GET", "/v1/networks/%E2%82", b"");
    let _ = decode_request("", "", b"");
}
