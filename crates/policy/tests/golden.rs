//! Golden files: the rendered rulesets of a corpus (every driver ×
//! isolation × profile × ACL mode, plus the Azure CNI and Calico ladders of
//! the HCN reference §4.3). `BULKHEAD_BLESS=1` rewrites them.

use std::path::PathBuf;

use bulkhead_model::{
    AclMode, AclProfile, AclRule, AclRuleSpec, Driver, Isolation, MacAddress, PortMapping,
};
use bulkhead_policy::render::render;
use bulkhead_policy::{
    check_rule, compile_endpoint_firewall, compile_switch, EndpointFacts, EndpointPolicy,
    FirewallEndpoint, SwitchPortPolicy,
};

#[allow(clippy::too_many_arguments)] // a table of rules reads best as positional rows
fn spec(
    id: &str,
    action: &str,
    dir: &str,
    proto: &str,
    remote: &str,
    lports: &str,
    rtype: &str,
    prio: u16,
) -> AclRule {
    let s = AclRuleSpec {
        id: Some(id.into()),
        action: action.into(),
        direction: dir.into(),
        protocol: Some(proto.into()),
        remote_addresses: Some(remote.into()),
        local_ports: Some(lports.into()),
        rule_type: Some(rtype.into()),
        priority: Some(prio.to_string()),
        ..Default::default()
    };
    s.validate(id).unwrap()
}

fn facts(
    driver: Driver,
    isolation: Isolation,
    profile: AclProfile,
    acl_mode: AclMode,
) -> EndpointFacts {
    EndpointFacts {
        driver,
        isolation,
        profile,
        acl_mode,
        addresses: vec!["10.88.0.2".parse().unwrap(), "fd00:88::2".parse().unwrap()],
        port_mappings: vec![
            PortMapping::parse("publish", "8080:80/tcp").unwrap(),
            PortMapping::parse("publish", "5353:53/udp").unwrap(),
        ],
    }
}

fn sample_rules() -> Vec<AclRule> {
    vec![
        spec(
            "web",
            "allow",
            "in",
            "tcp",
            "10.0.0.0/8,fd00::/64",
            "80,443",
            "host",
            100,
        ),
        spec("no-telnet", "block", "in", "tcp", "", "23", "host", 100),
        spec(
            "dns-out",
            "block",
            "out",
            "udp",
            "192.168.1.1",
            "",
            "host",
            200,
        ),
        spec("sw-block-gre", "block", "in", "gre", "", "", "switch", 300),
        spec(
            "sw-allow-ssh",
            "allow",
            "in",
            "tcp",
            "10.1.0.0/16",
            "22",
            "switch",
            300,
        ),
    ]
}

fn render_case(policy: &EndpointPolicy) -> String {
    let mut out = String::new();
    out.push_str("# host firewall (endpoint namespace)\n");
    out.push_str(&render(
        &compile_endpoint_firewall(&[FirewallEndpoint {
            ifname: "eth0".into(),
            policy: policy.clone(),
        }])
        .unwrap(),
    ));
    out.push_str("\n# switch port (host namespace)\n");
    let port = SwitchPortPolicy {
        port: "bhp0123456789".into(),
        mac: MacAddress([2, 0x42, 10, 88, 0, 2]),
        policy: policy.clone(),
    };
    out.push_str(&render(&compile_switch(&[port]).unwrap()));
    out
}

fn corpus() -> Vec<(String, EndpointPolicy)> {
    let mut cases = Vec::new();
    for driver in [
        Driver::Nat,
        Driver::Transparent,
        Driver::L2Bridge,
        Driver::L2Tunnel,
        Driver::Overlay,
    ] {
        for isolation in [Isolation::Process, Isolation::Vm] {
            for profile in [AclProfile::Current, AclProfile::Legacy] {
                for mode in [AclMode::Layered, AclMode::Replace] {
                    let rules = sample_rules()
                        .into_iter()
                        .filter(|r| check_rule(driver, isolation, r.rule_type).is_ok())
                        .collect();
                    let name = format!("{driver}-{isolation}-{profile}-{mode}");
                    cases.push((
                        name,
                        EndpointPolicy::new(facts(driver, isolation, profile, mode), rules)
                            .unwrap(),
                    ));
                }
            }
        }
    }
    let replace = facts(
        Driver::L2Bridge,
        Isolation::Process,
        AclProfile::Current,
        AclMode::Replace,
    );
    let azure = vec![
        spec(
            "block-wireserver",
            "block",
            "out",
            "tcp",
            "168.63.129.16",
            "",
            "switch",
            200,
        ),
        spec("allow-in", "allow", "in", "", "", "", "switch", 65500),
        spec("allow-out", "allow", "out", "", "", "", "switch", 65500),
    ];
    // Azure blocks the wireserver's port 80: a remote port.
    let mut azure = azure;
    azure[0].remote_ports = bulkhead_model::PortList::parse("remote_ports", "80").unwrap();
    cases.push((
        "ladder-azure-cni".into(),
        EndpointPolicy::new(replace.clone(), azure).unwrap(),
    ));
    let calico = vec![
        spec("host-allow-in", "allow", "in", "", "", "", "host", 0),
        spec("host-allow-out", "allow", "out", "", "", "", "host", 0),
        spec(
            "allow-host-to-endpoint",
            "allow",
            "in",
            "",
            "10.88.0.1",
            "",
            "switch",
            900,
        ),
        spec(
            "policy-allow-web",
            "allow",
            "in",
            "tcp",
            "10.88.0.0/16",
            "80,8000-8100",
            "switch",
            1000,
        ),
        spec(
            "policy-allow-dns-out",
            "allow",
            "out",
            "udp",
            "10.96.0.10",
            "",
            "switch",
            1001,
        ),
        spec(
            "default-block-in",
            "block",
            "in",
            "256",
            "",
            "",
            "switch",
            65000,
        ),
        spec(
            "default-block-out",
            "block",
            "out",
            "256",
            "",
            "",
            "switch",
            65000,
        ),
        spec(
            "endpoint-default-block-in",
            "block",
            "in",
            "256",
            "",
            "",
            "switch",
            65500,
        ),
    ];
    cases.push((
        "ladder-calico".into(),
        EndpointPolicy::new(replace, calico).unwrap(),
    ));
    cases
}

#[test]
fn rendered_rulesets_match_golden_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var("BULKHEAD_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for (name, policy) in corpus() {
        let path = dir.join(format!("{name}.nft"));
        let got = render_case(&policy);
        if bless {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != got {
            failures.push(name);
        }
    }
    assert!(
        failures.is_empty(),
        "golden files differ (BULKHEAD_BLESS=1 to rewrite): {failures:?}"
    );
}
