use super::*;
use serde_json::json;

fn conf(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn base() -> Value {
    json!({
        "cniVersion": "1.1.0",
        "name": "bulkhead-web",
        "type": "bulkhead-cni",
        "bulkhead": {"network": "web"}
    })
}

fn err_code(v: Value, command: Command) -> u32 {
    CniError::from(parse(&conf(v), command).unwrap_err())
        .code
        .number()
}

#[test]
fn minimal_configuration_takes_defaults() {
    let c = parse(&conf(base()), Command::Add).unwrap();
    assert_eq!(c.version, Version::V1_1_0);
    assert_eq!(c.bulkhead.network, "web");
    assert_eq!(c.bulkhead.socket, PathBuf::from(DEFAULT_SOCKET));
    assert!(c.port_mappings.is_empty() && c.bulkhead.acls.is_empty());
    assert!(c.bulkhead.create_network.is_none());
}

#[test]
fn full_configuration_is_read() {
    let mut v = base();
    v["bulkhead"] = json!({
        "network": "web", "socket": "/tmp/b.sock", "aclMode": "replace",
        "driver": "nat", "subnet": "10.9.0.0/24", "vni": 7,
        "acls": [{"direction": "in", "action": "allow", "protocol": 6,
                  "localPorts": [80, "443"], "remoteAddresses": "10.0.0.0/8", "priority": 100}]
    });
    v["runtimeConfig"] = json!({"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "TCP"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}
    ]});
    v["dns"] = json!({"nameservers": ["10.9.0.1"]});
    let c = parse(&conf(v), Command::Add).unwrap();
    let acl = &c.bulkhead.acls[0];
    assert_eq!(acl.protocol.as_deref(), Some("6"));
    assert_eq!(acl.local_ports.as_deref(), Some("80,443"));
    assert_eq!(acl.priority.as_deref(), Some("100"));
    let net = c.bulkhead.create_network.unwrap();
    assert_eq!(
        (net.driver.as_str(), net.vni.as_deref()),
        ("nat", Some("7"))
    );
    assert_eq!(c.port_mappings[0].protocol, "tcp");
    assert_eq!(c.port_mappings[1].to_publish(), "127.0.0.1:5353:53/udp");
    assert_eq!(c.dns.unwrap().nameservers, vec!["10.9.0.1"]);
}

#[test]
fn errors_have_the_spec_codes() {
    let mut v = base();
    v["cniVersion"] = json!("0.2.0");
    assert_eq!(err_code(v, Command::Add), 1);
    let mut v = base();
    v.as_object_mut().unwrap().remove("cniVersion");
    assert_eq!(err_code(v, Command::Add), 1);
    let mut v = base();
    v["cniVersion"] = json!("1.0.0");
    assert_eq!(err_code(v, Command::Gc), 1);
    let mut v = base();
    v["bulkhead"]["bogus"] = json!(true);
    let e = CniError::from(parse(&conf(v), Command::Add).unwrap_err());
    assert_eq!(e.code.number(), 2);
    assert!(e.details.contains("bulkhead.bogus") && e.details.contains("true"));
    let mut v = base();
    v["ipam"] = json!({"type": "host-local"});
    assert_eq!(err_code(v, Command::Add), 2);
    for (key, bad) in [
        ("type", json!("bridge")),
        ("name", json!("")),
        ("bulkhead", json!({"network": "bad name"})),
        ("bulkhead", json!({"network": "web", "aclMode": "strict"})),
        (
            "bulkhead",
            json!({"network": "web", "subnet": "10.0.0.0/24"}),
        ),
        ("bulkhead", json!({"network": "web", "socket": "rel.sock"})),
        (
            "bulkhead",
            json!({"network": "web", "acls": [{"direction": "up", "action": "allow"}]}),
        ),
        (
            "bulkhead",
            json!({"network": "web", "acls": [{"direction": "in", "action": "allow", "x": 1}]}),
        ),
        (
            "runtimeConfig",
            json!({"portMappings": [{"hostPort": 0, "containerPort": 80}]}),
        ),
        (
            "runtimeConfig",
            json!({"portMappings": [{"hostPort": 70000, "containerPort": 80}]}),
        ),
        (
            "runtimeConfig",
            json!({"portMappings": [{"hostPort": 1, "containerPort": 80, "protocol": "sctp"}]}),
        ),
        (
            "runtimeConfig",
            json!({"portMappings": [{"hostPort": 1, "containerPort": 80, "hostIP": "x"}]}),
        ),
    ] {
        let mut v = base();
        v[key] = bad.clone();
        assert_eq!(err_code(v, Command::Add), 7, "{key}: {bad}");
    }
}

#[test]
fn gc_needs_the_valid_attachments_under_either_key() {
    assert_eq!(err_code(base(), Command::Gc), 7);
    for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
        let mut v = base();
        v[key] = json!([{"containerID": "c1", "ifname": "eth0"}]);
        let c = parse(&conf(v), Command::Gc).unwrap();
        assert_eq!(c.valid_attachments.unwrap()[0].container_id, "c1");
    }
}

#[test]
fn stdin_that_is_not_an_object_is_a_decode_error() {
    for bad in [&b"not json"[..], b"[1]", b""] {
        assert_eq!(CniError::from(decode(bad).unwrap_err()).code.number(), 6);
    }
}
