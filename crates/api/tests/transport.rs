//! Server and client over a real Unix socket, with a fake service.
//!
//! Every route goes through `Client` -> HTTP -> `decode_request` -> the fake
//! `Service`, which records the command and answers with canned data; error
//! codes, statuses, limits and the socket's file mode are checked too.

use bulkhead_api::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

#[derive(Default)]
struct FakeService {
    seen: Mutex<Vec<Command>>,
}

fn network() -> NetworkInfo {
    NetworkInfo {
        id: "3f1c".into(),
        name: "n1".into(),
        driver: "nat".into(),
        subnets: vec!["10.1.0.0/24".into()],
        gateway: Some("10.1.0.1".into()),
        acl_profile: "current".into(),
        endpoints: 2,
        ..NetworkInfo::default()
    }
}

fn namespace() -> NamespaceInfo {
    NamespaceInfo {
        id: "9a".into(),
        name: "pod".into(),
        compartment_id: 2,
        isolation: "process".into(),
        netns_path: Some("/run/netns/bh-pod".into()),
        endpoints: vec!["ep".into()],
        containers: vec![],
        adopted: false,
    }
}

fn acl() -> AclInfo {
    AclInfo {
        id: "r1".into(),
        direction: "in".into(),
        action: "block".into(),
        protocol: "tcp".into(),
        local_ports: vec!["80".into()],
        priority: 100,
        rule_type: "host".into(),
        ..AclInfo::default()
    }
}

fn endpoint() -> EndpointInfo {
    EndpointInfo {
        id: "77".into(),
        name: "ep".into(),
        network: "n1".into(),
        namespace: "pod".into(),
        ip_address: "10.1.0.5".into(),
        mac_address: "02:00:0a:01:00:05".into(),
        switch_port: "bhp0123456789".into(),
        ifname: Some("eth0".into()),
        acl_mode: "layered".into(),
        acls: vec![acl()],
        ..EndpointInfo::default()
    }
}

fn acl_stats() -> AclStatsInfo {
    AclStatsInfo {
        acls: vec![acl()],
        counters: vec![AclCounterInfo {
            rule: "r1".into(),
            default: false,
            point: "host".into(),
            direction: "in".into(),
            packets: 5,
            bytes: 300,
        }],
    }
}

fn canned(kind: ResponseKind) -> Response {
    match kind {
        ResponseKind::Health => Response::Health(HealthInfo {
            status: "ok".into(),
            version: "test".into(),
        }),
        ResponseKind::Network => Response::Network(network()),
        ResponseKind::Networks => Response::Networks(vec![network()]),
        ResponseKind::Namespace => Response::Namespace(namespace()),
        ResponseKind::Namespaces => Response::Namespaces(vec![namespace()]),
        ResponseKind::Endpoint => Response::Endpoint(endpoint()),
        ResponseKind::Endpoints => Response::Endpoints(vec![endpoint()]),
        ResponseKind::Acl => Response::Acl(acl()),
        ResponseKind::Acls => Response::Acls(vec![acl()]),
        ResponseKind::AclStats => Response::AclStats(acl_stats()),
        ResponseKind::Trace => Response::Trace(TraceResult {
            verdict: "block".into(),
            hops: vec![TraceHop {
                stage: "destination_point".into(),
                point: "host".into(),
                location: "ep in".into(),
                rule: "r1".into(),
                verdict: "block".into(),
            }],
            target: "endpoint ep".into(),
            delivered: "10.1.0.2 -> 10.1.0.9:80".into(),
        }),
        ResponseKind::Events => Response::Events(EventsPage {
            events: vec![EventInfo {
                seq: 4,
                kind: "drop".into(),
                endpoint: Some("ep".into()),
                rule: Some("r1".into()),
                dst_port: Some(23),
                ..EventInfo::default()
            }],
            last: 4,
        }),
        ResponseKind::Nodes => Response::Nodes(vec![bulkhead_api::NodeInfo {
            name: "node-a".into(),
            underlay_address: "10.98.0.2".into(),
            state: "ready".into(),
            endpoints: 2,
            last_seen: "2026-12-03T19:00:00Z".into(),
        }]),
        ResponseKind::Import => Response::Import(ImportResult {
            networks: vec!["n1".into()],
            acls: 3,
            ..ImportResult::default()
        }),
        ResponseKind::Removed => Response::Removed,
    }
}

impl Service for FakeService {
    async fn handle(&self, cmd: Command) -> Result<Response, ApiError> {
        self.seen.lock().unwrap().push(cmd.clone());
        match &cmd {
            Command::NetworkInspect { name } if name == "missing" => {
                Err(ApiError::not_found("network \"missing\" does not exist"))
            }
            Command::NetworkInspect { name } if name == "busy" => {
                Err(ApiError::unavailable("reconciling"))
            }
            Command::NetworkRemove { name } if name == "used" => {
                Err(ApiError::conflict("network \"used\" has 2 endpoints"))
            }
            Command::NetworkRemove { name } if name == "boom" => {
                Err(ApiError::internal("netlink said\nno"))
            }
            _ => Ok(canned(cmd.response_kind())),
        }
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    service: Arc<FakeService>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Harness {
    fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/bulkhead/bulkhead.sock");
        let server = Server::bind(&socket).unwrap();
        let service = Arc::new(FakeService::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(service.clone(), async move {
            let _ = stopped.await;
        }));
        Harness {
            _dir: dir,
            socket,
            service,
            stop: Some(stop),
            task,
        }
    }

    fn client(&self) -> Client {
        Client::new(&self.socket)
    }

    fn last(&self) -> Command {
        self.service.seen.lock().unwrap().last().cloned().unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
        assert!(!self.socket.exists(), "socket file left behind");
    }
}

/// Sends raw HTTP and returns (status, body), like curl would.
async fn raw_http(socket: &Path, request: &str) -> (u16, String) {
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    // The server may answer (413) and stop reading before the whole request is
    // written; what it answered is what counts.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8(reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    let body = reply.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[tokio::test]
async fn every_route_round_trips() {
    let h = Harness::start();
    let c = h.client();
    assert_eq!(c.health().await.unwrap().status, "ok");
    assert_eq!(h.last(), Command::Health);

    let req = NetworkSpec {
        name: "n1".into(),
        driver: "nat".into(),
        vni: Some("7".into()),
        ..NetworkSpec::default()
    };
    assert_eq!(c.network_create(req.clone()).await.unwrap(), network());
    assert_eq!(h.last(), Command::NetworkCreate(req));
    assert_eq!(c.network_list().await.unwrap(), vec![network()]);
    assert_eq!(h.last(), Command::NetworkList);
    assert_eq!(c.network_inspect("n1").await.unwrap(), network());
    assert_eq!(h.last(), Command::NetworkInspect { name: "n1".into() });
    c.network_remove("n/1").await.unwrap();
    assert_eq!(h.last(), Command::NetworkRemove { name: "n/1".into() });

    let req = NamespaceSpec {
        name: "pod".into(),
        isolation: Some("hyperv".into()),
        ..NamespaceSpec::default()
    };
    assert_eq!(c.namespace_create(req.clone()).await.unwrap(), namespace());
    assert_eq!(h.last(), Command::NamespaceCreate(req));
    assert_eq!(c.namespace_list().await.unwrap(), vec![namespace()]);
    assert_eq!(h.last(), Command::NamespaceList);
    assert_eq!(c.namespace_inspect("pod").await.unwrap(), namespace());
    assert_eq!(h.last(), Command::NamespaceInspect { name: "pod".into() });
    c.namespace_remove("pod").await.unwrap();
    assert_eq!(h.last(), Command::NamespaceRemove { name: "pod".into() });

    let req = EndpointSpec {
        name: "ep".into(),
        network: "n1".into(),
        namespace: "pod".into(),
        publish: vec!["8080:80/tcp".into()],
        ..EndpointSpec::default()
    };
    assert_eq!(c.endpoint_create(req.clone()).await.unwrap(), endpoint());
    assert_eq!(h.last(), Command::EndpointCreate(req));
    assert_eq!(c.endpoint_list().await.unwrap(), vec![endpoint()]);
    assert_eq!(h.last(), Command::EndpointList);
    assert_eq!(c.endpoint_inspect("ep").await.unwrap(), endpoint());
    assert_eq!(h.last(), Command::EndpointInspect { name: "ep".into() });
    c.endpoint_remove("ep").await.unwrap();
    assert_eq!(h.last(), Command::EndpointRemove { name: "ep".into() });

    let rule = AclRuleSpec {
        direction: "in".into(),
        action: "block".into(),
        local_ports: Some("80".into()),
        ..AclRuleSpec::default()
    };
    assert_eq!(c.acl_add("ep", rule.clone()).await.unwrap(), acl());
    let endpoint = "ep".to_owned();
    assert_eq!(h.last(), Command::AclAdd { endpoint, rule });
    assert_eq!(c.acl_list("ep").await.unwrap(), vec![acl()]);
    assert_eq!(
        h.last(),
        Command::AclList {
            endpoint: "ep".into()
        }
    );
    assert_eq!(c.acl_stats("ep").await.unwrap(), acl_stats());
    assert_eq!(
        h.last(),
        Command::AclStats {
            endpoint: "ep".into()
        }
    );
    c.acl_remove("ep", "r1").await.unwrap();
    let (endpoint, id) = ("ep".to_owned(), "r1".to_owned());
    assert_eq!(h.last(), Command::AclRemove { endpoint, id });

    let req = TraceSpec {
        from: "ep".into(),
        to: "10.1.0.9".into(),
        protocol: "tcp".into(),
        port: Some("80".into()),
        source_port: Some("40000".into()),
        established: true,
        ..Default::default()
    };
    assert_eq!(c.trace(req.clone()).await.unwrap().verdict, "block");
    assert_eq!(h.last(), Command::Trace(req));
    let doc = serde_json::json!({"Networks": []});
    assert_eq!(c.import(doc.clone()).await.unwrap().acls, 3);
    assert_eq!(h.last(), Command::Import(ImportRequest { document: doc }));
    let req = EventsRequest {
        endpoint: Some("ep".into()),
        after: Some(3),
        wait_ms: Some(100),
    };
    let page = c.events(req.clone()).await.unwrap();
    assert_eq!((page.last, page.events[0].dst_port), (4, Some(23)));
    assert_eq!(h.last(), Command::Events(req));
    assert_eq!(h.service.seen.lock().unwrap().len(), 20);
    h.stop().await;
}

#[tokio::test]
async fn socket_is_private_and_its_directory_too() {
    let h = Harness::start();
    let mode = std::fs::metadata(&h.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let dir_mode = std::fs::metadata(h.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "directory mode {dir_mode:o}");
    let leftovers: Vec<_> = std::fs::read_dir(h.socket.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    h.stop().await;
}

#[tokio::test]
async fn errors_map_to_statuses_and_json_bodies() {
    let h = Harness::start();
    let cases = [
        ("GET /v1/networks/missing", 404, "not_found"),
        ("GET /v1/networks/busy", 503, "unavailable"),
        ("DELETE /v1/networks/used", 409, "conflict"),
        ("DELETE /v1/networks/boom", 500, "internal"),
        ("GET /v1/nothing", 404, "not_found"),
        ("PATCH /v1/networks", 405, "method_not_allowed"),
        ("POST /v1/networks", 400, "bad_request"),
    ];
    for (line, status, code) in cases {
        let req = format!("{line} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let (got, body) = raw_http(&h.socket, &req).await;
        assert_eq!(got, status, "{line}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], code, "{line}: {body}");
        assert!(!v["error"]["message"].as_str().unwrap().contains('\n'));
    }
    let err = h.client().network_inspect("missing").await.unwrap_err();
    let ClientError::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.code, ErrorCode::NotFound);
    assert_eq!(err.to_string(), "network \"missing\" does not exist");
    let err = h.client().network_remove("boom").await.unwrap_err();
    assert_eq!(err.to_string(), "netlink said; no");
    h.stop().await;
}

#[tokio::test]
async fn curl_style_requests_work() {
    let h = Harness::start();
    let req = "GET /v1/networks HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (status, body) = raw_http(&h.socket, req).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["name"], "n1");
    assert_eq!(v[0]["subnets"][0], "10.1.0.0/24");
    let body = r#"{"name":"n2","driver":"overlay","vni":4096}"#;
    let req = format!(
        "POST /v1/networks HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, _) = raw_http(&h.socket, &req).await;
    assert_eq!(status, 201);
    let Command::NetworkCreate(r) = h.last() else {
        panic!("wrong command")
    };
    assert_eq!(r.vni.as_deref(), Some("4096"));
    let req = "DELETE /v1/networks/n2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_http(&h.socket, req).await.0, 204);
    h.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_reading() {
    let h = Harness::start();
    for (path, size) in [
        ("/v1/networks", MAX_BODY + 1),
        ("/v1/import", MAX_IMPORT_BODY + 1),
    ] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        );
        let (status, body) = raw_http(&h.socket, &req).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert!(body.contains("over the limit"), "{body}");
    }
    // A chunked body has no declared length: the limit applies while reading.
    let chunk = "a".repeat(MAX_BODY + 10);
    let req = format!(
        "POST /v1/networks HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, _) = raw_http(&h.socket, &req).await;
    assert_eq!(status, 413);
    h.stop().await;
}

#[tokio::test]
async fn a_missing_daemon_is_reported_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bulkhead.sock");
    let err = Client::new(&socket).network_list().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach bulkheadd at {}: No such file or directory (is bulkheadd running?)",
            socket.display()
        )
    );
}

#[tokio::test]
async fn stale_sockets_are_replaced_but_live_ones_and_files_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let live = Server::bind(&socket).expect("stale socket should be replaced");
    match Server::bind(&socket) {
        Err(BindError::InUse { .. }) => {}
        other => panic!("expected InUse, got {other:?}"),
    }
    drop(live);
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    match Server::bind(&file) {
        Err(e @ BindError::NotASocket { .. }) => {
            assert!(e.to_string().contains("is not a socket"), "{e}")
        }
        other => panic!("expected NotASocket, got {other:?}"),
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}
