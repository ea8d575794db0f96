//! Every CLI command end to end against a real bulkheadd in a throwaway host
//! namespace: tables and `--output json`, exec, trace, import, completions,
//! and a real ping between two endpoints created through the CLI.

mod common;

use common::{endpoint, ip, Daemon};

#[test]
fn network_and_namespace_commands() {
    let Some(d) = Daemon::start() else { return };
    let created = d.ok(&[
        "network",
        "create",
        "web",
        "--driver",
        "nat",
        "--subnet",
        "10.91.0.0/24",
        "--gateway",
        "10.91.0.1",
        "--acl-profile",
        "legacy",
    ]);
    assert_eq!(created.trim(), "web");
    let table = d.ok(&["network", "ls"]);
    assert!(table.starts_with("NETWORK ID"), "{table}");
    assert!(
        table.contains("web") && table.contains("10.91.0.0/24"),
        "{table}"
    );
    let n = d.json(&["network", "inspect", "web"]);
    assert_eq!(n["driver"], "nat");
    assert_eq!(n["subnets"][0], "10.91.0.0/24");
    assert_eq!(n["gateway"], "10.91.0.1");
    assert_eq!(n["acl_profile"], "legacy");
    let details = d.ok(&["network", "inspect", "web"]);
    assert!(details.contains("legacy"), "{details}");
    assert_eq!(d.names("network"), ["web"]);

    // Namespaces, the `compartment` alias, vm and the hyperv alias.
    d.ok(&["namespace", "create", "pod1"]);
    d.ok(&["compartment", "create", "pod2", "--isolation", "process"]);
    d.ok(&["namespace", "create", "vm1", "--isolation", "vm"]);
    d.ok(&["namespace", "create", "vm2", "--isolation", "hyperv"]);
    let pod = d.json(&["namespace", "inspect", "pod1"]);
    for field in ["id", "name", "compartment_id", "isolation", "netns_path"] {
        assert!(
            !pod[field].is_null(),
            "namespace inspect lacks {field}: {pod}"
        );
    }
    assert_eq!(pod["isolation"], "process");
    let path = pod["netns_path"].as_str().expect("netns_path");
    assert_eq!(path, format!("/run/netns/{}pod1", d.prefix));
    assert!(std::path::Path::new(path).exists());
    assert!(pod["compartment_id"].as_u64().expect("u32") > 1);
    assert_eq!(
        d.json(&["compartment", "inspect", "vm2"])["isolation"],
        "vm"
    );
    assert_eq!(d.json(&["namespace", "inspect", "vm1"])["isolation"], "vm");
    let table = d.ok(&["compartment", "ls"]);
    assert!(
        table.contains("COMPARTMENT") && table.contains("vm2"),
        "{table}"
    );
    assert_eq!(d.names("namespace"), ["pod1", "pod2", "vm1", "vm2"]);
    assert_eq!(d.pins().len(), 2, "only process namespaces are pinned");
    let ids: std::collections::BTreeSet<u64> = d
        .json(&["namespace", "ls"])
        .as_array()
        .expect("array")
        .iter()
        .map(|n| n["compartment_id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 4, "compartment ids are distinct");

    assert_eq!(d.ok(&["namespace", "rm", "pod2"]).trim(), "pod2");
    d.ok(&["compartment", "rm", "vm2"]);
    assert_eq!(d.names("namespace"), ["pod1", "vm1"]);
    assert_eq!(d.pins(), [format!("{}pod1", d.prefix)]);
    d.ok(&["network", "rm", "web"]);
    assert!(d.names("network").is_empty());
    assert!(d.host_links("bhn").is_empty(), "network device removed");
    d.fails(&["network", "inspect", "web"]);
}

#[test]
fn endpoint_acl_exec_and_ping() {
    let Some(d) = Daemon::start() else { return };
    d.network("n1", "nat", "10.92.0.0/24");
    d.ok(&["namespace", "create", "a"]);
    let a = d.json(&[
        "endpoint",
        "create",
        "a",
        "--network",
        "n1",
        "--namespace",
        "a",
        "--ip",
        "10.92.0.10",
        "--mac",
        "02:00:00:aa:bb:cc",
        "--publish",
        "8080:80",
        "--publish",
        "127.0.0.1:5353:53/udp",
        "--acl-mode",
        "replace",
    ]);
    for field in [
        "id",
        "name",
        "network",
        "namespace",
        "ip_address",
        "mac_address",
        "switch_port",
    ] {
        assert!(!a[field].is_null(), "endpoint lacks {field}: {a}");
    }
    assert_eq!(a["ip_address"], "10.92.0.10/24");
    assert_eq!(a["mac_address"], "02:00:00:aa:bb:cc");
    assert_eq!(a["acl_mode"], "replace");
    assert_eq!(a["port_mappings"].as_array().expect("array").len(), 2);
    let b = endpoint(&d, "n1", "b", "b");
    let table = d.ok(&["endpoint", "ls"]);
    assert!(
        table.starts_with("NAME") && table.contains("10.92.0.10"),
        "{table}"
    );
    let inspect = d.ok(&["endpoint", "inspect", "a"]);
    assert!(inspect.contains("8080->80/tcp"), "{inspect}");
    assert_eq!(d.json(&["endpoint", "inspect", "a"]), a);
    assert_eq!(
        d.host_links("bhp"),
        {
            let mut p = vec![a["switch_port"].as_str().unwrap().to_owned()];
            p.push(b["switch_port"].as_str().unwrap().to_owned());
            p.sort();
            p
        },
        "switch ports exist"
    );

    // exec: the endpoint's interface is inside the namespace.
    let ifname = a["ifname"].as_str().expect("ifname");
    let addr = d.ok(&["exec", "a", "--", "ip", "-o", "addr", "show"]);
    assert!(
        addr.contains(ifname) && addr.contains("10.92.0.10/24"),
        "{addr}"
    );
    let dev = d.ok(&["exec", "b", "--", "cat", "/proc/net/dev"]);
    assert!(dev.contains(b["ifname"].as_str().unwrap()), "{dev}");
    let status = d.run(&["exec", "a", "--", "false"]);
    assert_eq!(status.status.code(), Some(1), "exec passes the exit status");

    // A real packet: b pings a (a is `replace` with no rules yet: defaults).
    let b_ip = b["ip_address"].as_str().unwrap().split('/').next().unwrap();
    assert!(d.pings("b", "10.92.0.10"), "b -> a");
    assert!(d.pings("a", b_ip), "a -> b");

    // ACLs: all flags.
    let id = d.ok(&[
        "acl",
        "add",
        "b",
        "--direction",
        "in",
        "--action",
        "block",
        "--protocol",
        "icmp",
        "--local-addresses",
        b_ip,
        "--remote-addresses",
        "10.92.0.0/24",
        "--priority",
        "100",
        "--rule-type",
        "host",
        "--id",
        "no-ping",
    ]);
    assert_eq!(id.trim(), "no-ping");
    let rule = d.json(&[
        "acl",
        "add",
        "b",
        "--direction",
        "out",
        "--action",
        "allow",
        "--protocol",
        "tcp",
        "--local-ports",
        "1000-2000,3000",
        "--remote-ports",
        "80,443",
        "--priority",
        "200",
    ]);
    assert_eq!(rule["local_ports"][0], "1000-2000");
    let acls = d.json(&["acl", "ls", "b"]);
    assert_eq!(acls.as_array().expect("array").len(), 2);
    let table = d.ok(&["acl", "ls", "b"]);
    assert!(
        table.contains("no-ping") && table.contains("PRIORITY"),
        "{table}"
    );
    assert!(!d.pings("a", b_ip), "ICMP in to b is blocked by no-ping");
    d.ok(&["acl", "rm", "b", "no-ping"]);
    d.ok(&["acl", "rm", "b", rule["id"].as_str().unwrap()]);
    assert!(d.json(&["acl", "ls", "b"]).as_array().unwrap().is_empty());
    assert!(d.pings("a", b_ip), "ping works again");

    d.ok(&["endpoint", "rm", "a"]);
    assert_eq!(d.names("endpoint"), ["b"]);
    d.assert_consistent();
    d.ok(&["endpoint", "rm", "b"]);
    assert!(d.host_links_become("bhp", &[]).is_empty());
}

#[test]
fn trace_verdicts_with_deciding_rule() {
    let Some(d) = Daemon::start() else { return };
    d.network("cur", "nat", "10.93.0.0/24");
    endpoint(&d, "cur", "x", "x");
    endpoint(&d, "cur", "y", "y");
    let t = |proto: &str| {
        d.json(&[
            "trace",
            "--from",
            "x",
            "--to",
            "y",
            "--protocol",
            proto,
            "--port",
            "80",
        ])
    };
    let tcp = t("tcp");
    assert_eq!(tcp["verdict"], "allow", "{tcp}");
    let gre = d.json(&["trace", "--from", "x", "--to", "y", "--protocol", "gre"]);
    assert_eq!(gre["verdict"], "block", "{gre}");
    let deciding = gre["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .find(|h| h["verdict"] == "block")
        .expect("a blocking hop");
    assert!(!deciding["rule"].as_str().unwrap().is_empty(), "{gre}");
    // A custom rule decides and is named.
    d.ok(&[
        "acl",
        "add",
        "y",
        "--direction",
        "in",
        "--action",
        "block",
        "--protocol",
        "tcp",
        "--local-ports",
        "80",
        "--priority",
        "10",
        "--id",
        "no-web",
    ]);
    let tcp = t("tcp");
    assert_eq!(tcp["verdict"], "block", "{tcp}");
    assert!(tcp.to_string().contains("no-web"), "{tcp}");
    let table = d.ok(&[
        "trace",
        "--from",
        "x",
        "--to",
        "y",
        "--protocol",
        "tcp",
        "--port",
        "80",
    ]);
    assert!(
        table.contains("no-web") && table.contains("verdict: block"),
        "{table}"
    );
}

const HCN: &str = r#"{
  "Networks": [{
    "ID": "a1b2c3d4-0000-4000-8000-000000000004", "Name": "hcnnat", "Type": "NAT",
    "Ipams": [{ "Type": "Static", "Subnets": [{ "IpAddressPrefix": "10.94.0.0/24",
      "Routes": [{ "NextHop": "10.94.0.1", "DestinationPrefix": "0.0.0.0/0" }] }] }],
    "SchemaVersion": { "Major": 2, "Minor": 0 }
  }],
  "Namespaces": [{ "ID": "e3f4a5b6-c7d8-4e9f-a0b1-c2d3e4f5a6b7", "NamespaceId": 3, "Type": "Host" }],
  "Endpoints": [{
    "ID": "9d8c7b6a-5f4e-4d3c-8b2a-190817263544", "Name": "web",
    "HostComputeNetwork": "a1b2c3d4-0000-4000-8000-000000000004",
    "HostComputeNamespace": "e3f4a5b6-c7d8-4e9f-a0b1-c2d3e4f5a6b7",
    "IpConfigurations": [{ "IpAddress": "10.94.0.5", "PrefixLength": 24 }],
    "Policies": [
      { "Type": "ACL", "Settings": { "Id": "allow-web", "Protocols": "6", "Action": "Allow",
        "Direction": "In", "LocalPorts": "80", "RuleType": "Host", "Priority": 100 } }
    ]
  }]
}"#;

#[test]
fn import_and_completions() {
    let Some(d) = Daemon::start() else { return };
    let file = d.dir.path().join("doc.json");
    std::fs::write(&file, HCN).expect("write doc");
    let file = file.to_str().expect("utf-8 path");
    let r = d.json(&["import", file]);
    assert_eq!(r["networks"][0], "hcnnat", "{r}");
    assert_eq!(r["endpoints"][0], "web", "{r}");
    assert_eq!(r["acls"], 1, "{r}");
    let ep = d.json(&["endpoint", "inspect", "web"]);
    assert_eq!(ep["ip_address"], "10.94.0.5/24");
    assert_eq!(ep["acl_mode"], "replace", "HCN imports use replace");
    assert_eq!(d.json(&["acl", "ls", "web"])[0]["id"], "allow-web");
    let ns = ep["namespace"].as_str().unwrap().to_owned();
    assert!(d.pins().contains(&format!("{}{ns}", d.prefix)));
    d.assert_consistent();
    // Importing again conflicts and changes nothing.
    d.fails(&["import", file]);
    assert_eq!(d.names("endpoint"), ["web"]);
    d.assert_consistent();
    let bad = d.dir.path().join("bad.json");
    std::fs::write(&bad, "{ nope").expect("write");
    d.fails(&["import", bad.to_str().unwrap()]);

    for shell in ["bash", "zsh", "fish"] {
        let script = d.ok(&["completions", shell]);
        assert!(
            script.contains("bulkhead") && script.contains("endpoint"),
            "{shell}"
        );
    }
    // The host namespace has the endpoint's switch port, and nothing else of ours.
    let links = ip(&["-n", &d.host, "-o", "link", "show"]);
    assert!(
        links.contains(ep["switch_port"].as_str().unwrap()),
        "{links}"
    );
}
