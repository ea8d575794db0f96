//! Snapshot tests of the tables (golden files in `tests/snapshots/`; run with
//! `BLESS=1` to rewrite them after an intended change).

use super::*;
use bulkhead_api::{HealthInfo, TraceHop};
use std::path::PathBuf;

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to create)", path.display()));
    assert_eq!(actual, expected, "snapshot {name} differs");
    for line in actual.lines() {
        assert_eq!(line, line.trim_end(), "trailing blanks in {name}");
    }
}

fn networks() -> Vec<NetworkInfo> {
    vec![
        NetworkInfo {
            id: "3f1c2b7a-5d4e-4c1b-9a0f-1234567890ab".into(),
            name: "web".into(),
            driver: "nat".into(),
            subnets: vec!["172.30.0.0/24".into()],
            gateway: Some("172.30.0.1".into()),
            acl_profile: "current".into(),
            endpoints: 2,
            ..NetworkInfo::default()
        },
        NetworkInfo {
            id: "a0b1c2d3-0000-4000-8000-000000000001".into(),
            name: "backend-overlay".into(),
            driver: "overlay".into(),
            subnets: vec!["10.200.0.0/16".into(), "fd00:200::/64".into()],
            uplink: Some("veth-underlay".into()),
            vni: Some(4096),
            acl_profile: "legacy".into(),
            ..NetworkInfo::default()
        },
    ]
}

fn namespaces() -> Vec<NamespaceInfo> {
    vec![
        NamespaceInfo {
            id: "11111111-2222-4333-8444-555555555555".into(),
            name: "pod-a".into(),
            compartment_id: 2,
            isolation: "process".into(),
            netns_path: Some("/run/netns/bh-pod-a".into()),
            endpoints: vec!["a0".into()],
            containers: vec!["c0ffee00c0ffee00c0ffee".into(), "deadbeefdeadbeef".into()],
            adopted: false,
        },
        NamespaceInfo {
            id: "66666666-7777-4888-9999-aaaaaaaaaaaa".into(),
            name: "vm1".into(),
            compartment_id: 3,
            isolation: "vm".into(),
            ..NamespaceInfo::default()
        },
    ]
}

fn acls() -> Vec<AclInfo> {
    vec![
        AclInfo {
            id: "deny-ssh".into(),
            direction: "in".into(),
            action: "block".into(),
            protocol: "tcp".into(),
            local_ports: vec!["22".into()],
            remote_addresses: vec!["0.0.0.0/0".into()],
            priority: 100,
            rule_type: "switch".into(),
            ..AclInfo::default()
        },
        AclInfo {
            id: "r2".into(),
            direction: "out".into(),
            action: "allow".into(),
            protocol: "udp".into(),
            remote_ports: vec!["53".into(), "5353-5355".into()],
            priority: 4000,
            rule_type: "host".into(),
            ..AclInfo::default()
        },
    ]
}

fn endpoints() -> Vec<EndpointInfo> {
    vec![EndpointInfo {
        id: "77777777-0000-4000-8000-000000000000".into(),
        name: "a0".into(),
        network: "web".into(),
        namespace: "pod-a".into(),
        ip_address: "172.30.0.2/24".into(),
        mac_address: "02:42:ac:1e:00:02".into(),
        switch_port: "bhp7777777700".into(),
        ifname: Some("eth0".into()),
        port_mappings: vec![
            PortMappingInfo {
                protocol: "tcp".into(),
                host_ip: None,
                host_port: 8080,
                container_port: 80,
            },
            PortMappingInfo {
                protocol: "udp".into(),
                host_ip: Some("127.0.0.1".into()),
                host_port: 5353,
                container_port: 53,
            },
        ],
        acl_mode: "layered".into(),
        acls: acls(),
        container_id: None,
        tap: None,
        node: None,
    }]
}

fn table_of(cmd: Command, response: Response) -> String {
    render(OutputFormat::Table, &cmd, &response)
}

#[test]
fn network_ls() {
    check(
        "network_ls",
        &table_of(Command::NetworkList, Response::Networks(networks())),
    );
}

#[test]
fn network_ls_empty_has_only_the_header() {
    let text = table_of(Command::NetworkList, Response::Networks(vec![]));
    assert_eq!(text.lines().count(), 1);
    assert!(text.starts_with("NETWORK ID   NAME   DRIVER"), "{text}");
}

#[test]
fn namespace_ls() {
    check(
        "namespace_ls",
        &table_of(Command::NamespaceList, Response::Namespaces(namespaces())),
    );
}

#[test]
fn endpoint_ls() {
    check(
        "endpoint_ls",
        &table_of(Command::EndpointList, Response::Endpoints(endpoints())),
    );
}

#[test]
fn acl_ls() {
    let cmd = Command::AclList {
        endpoint: "a0".into(),
    };
    check("acl_ls", &table_of(cmd, Response::Acls(acls())));
}

#[test]
fn acl_ls_stats() {
    use bulkhead_api::{AclCounterInfo, AclStatsInfo};
    let counter =
        |rule: &str, default, point: &str, direction: &str, packets, bytes| AclCounterInfo {
            rule: rule.into(),
            default,
            point: point.into(),
            direction: direction.into(),
            packets,
            bytes,
        };
    let stats = AclStatsInfo {
        acls: acls(),
        counters: vec![
            counter("always:allow-nd", true, "host", "in", 3, 216),
            counter("current:in:allow-common", true, "host", "in", 12, 1104),
            counter("current:in:block-other", true, "host", "in", 2, 48),
            counter("stateful", true, "host", "in", 240, 161_873),
            counter("r2", false, "host", "out", 5, 300),
            counter("current:out:allow-all", true, "host", "out", 40, 3320),
            counter("always:allow-nd", true, "switch", "in", 3, 216),
            counter("deny-ssh", false, "switch", "in", 7, 420),
            counter("port:in:allow-all", true, "switch", "in", 17, 1500),
            counter("stateful", true, "switch", "in", 0, 0),
        ],
    };
    let cmd = Command::AclStats {
        endpoint: "a0".into(),
    };
    check("acl_ls_stats", &table_of(cmd, Response::AclStats(stats)));
}

#[test]
fn endpoint_inspect() {
    let cmd = Command::EndpointInspect { name: "a0".into() };
    let e = endpoints().remove(0);
    check("endpoint_inspect", &table_of(cmd, Response::Endpoint(e)));
}

/// A vm endpoint shows its TAP: the name a VMM opens and its options.
#[test]
fn endpoint_inspect_vm() {
    let cmd = Command::EndpointInspect { name: "g0".into() };
    let e = EndpointInfo {
        name: "g0".into(),
        namespace: "vm1".into(),
        ifname: None,
        port_mappings: Vec::new(),
        acls: Vec::new(),
        tap: Some(TapInfo {
            name: "bhp7777777700".into(),
            owner: Some(1000),
            group: None,
            queues: 4,
        }),
        ..endpoints().remove(0)
    };
    check("endpoint_inspect_vm", &table_of(cmd, Response::Endpoint(e)));
}

#[test]
fn namespace_inspect() {
    let cmd = Command::NamespaceInspect {
        name: "pod-a".into(),
    };
    let n = namespaces().remove(0);
    check("namespace_inspect", &table_of(cmd, Response::Namespace(n)));
}

#[test]
fn trace() {
    let hop = |stage: &str, point: &str, location: &str, rule: &str, verdict: &str| TraceHop {
        stage: stage.into(),
        point: point.into(),
        location: location.into(),
        rule: rule.into(),
        verdict: verdict.into(),
    };
    let t = TraceResult {
        verdict: "block".into(),
        hops: vec![
            hop(
                "source_point",
                "host",
                "a0 out",
                "default:current:allow-out",
                "allow",
            ),
            hop(
                "source_binding",
                "switch",
                "bhp7777777700",
                "switch:binding",
                "allow",
            ),
            hop("nat", "nat", "dnat", "publish 8080:80/tcp to b0", "allow"),
            hop("network", "network", "n1", "published-port", "allow"),
            hop(
                "destination_point",
                "switch",
                "bhp8888888800 in",
                "deny-ssh",
                "block",
            ),
        ],
        target: "endpoint b0".into(),
        delivered: "10.1.0.2 -> 10.1.0.3:80".into(),
    };
    let cmd = Command::Trace(Default::default());
    check("trace", &table_of(cmd, Response::Trace(t)));
}

#[test]
fn creations_and_removals_print_the_name() {
    let cmd = Command::NetworkCreate(Default::default());
    let n = networks().remove(0);
    assert_eq!(table_of(cmd, Response::Network(n)), "web\n");
    let cmd = Command::NetworkRemove { name: "web".into() };
    assert_eq!(table_of(cmd.clone(), Response::Removed), "web\n");
    assert_eq!(render(OutputFormat::Json, &cmd, &Response::Removed), "");
    let cmd = Command::AclRemove {
        endpoint: "a0".into(),
        id: "r2".into(),
    };
    assert_eq!(table_of(cmd, Response::Removed), "r2\n");
}

#[test]
fn json_is_the_api_body() {
    let cmd = Command::NamespaceInspect {
        name: "pod-a".into(),
    };
    let n = namespaces().remove(0);
    let text = render(OutputFormat::Json, &cmd, &Response::Namespace(n.clone()));
    let back: NamespaceInfo = serde_json::from_str(&text).unwrap();
    assert_eq!(back, n);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in ["id", "name", "compartment_id", "isolation", "netns_path"] {
        assert!(v.get(key).is_some(), "{key} missing in {text}");
    }
    let health = Response::Health(HealthInfo {
        status: "ok".into(),
        version: "1".into(),
    });
    let text = render(OutputFormat::Json, &Command::Health, &health);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["status"],
        "ok"
    );
}
