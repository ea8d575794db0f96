//! The fuzz targets' checks (`fuzz/fuzz_targets/`) as stable-Rust property
//! tests, so CI exercises them without nightly: every parser of user input
//! never panics, and whatever it accepts prints back to text that parses to
//! the same value. Each property runs at least 10,000 cases, on arbitrary
//! strings and on generators that build mostly-valid input.

use bulkhead_model::hcn::{emit_document_json, parse_document};
use bulkhead_model::{AddressList, PortList, PortMapping, Protocol};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const CASES: u32 = 10_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The checks shared with `fuzz/fuzz_targets/acl_lists.rs`.
fn check_acl_lists(s: &str) {
    if let Ok(l) = AddressList::parse("f", s) {
        assert_eq!(
            AddressList::parse("f", &l.to_string()).as_ref(),
            Ok(&l),
            "{s:?}"
        );
    }
    if let Ok(l) = PortList::parse("f", s) {
        assert_eq!(
            PortList::parse("f", &l.to_string()).as_ref(),
            Ok(&l),
            "{s:?}"
        );
    }
    if let Ok(p) = Protocol::parse("f", s) {
        assert_eq!(Protocol::parse("f", &p.to_string()), Ok(p), "{s:?}");
        assert_eq!(Protocol::parse("f", &p.to_hcn()), Ok(p), "{s:?}");
    }
    if let Ok(m) = PortMapping::parse("f", s) {
        assert_eq!(PortMapping::parse("f", &m.to_string()), Ok(m), "{s:?}");
    }
}

/// The check shared with `fuzz/fuzz_targets/hcn_json.rs`.
fn check_hcn(bytes: &[u8]) -> bool {
    let Ok(doc) = parse_document(bytes) else {
        return false;
    };
    let json = emit_document_json(&doc);
    let again = parse_document(json.as_bytes())
        .unwrap_or_else(|e| panic!("emitted document refused: {e}\n{json}"));
    assert!(
        doc.same_objects(&again),
        "round trip changed the document\n{json}"
    );
    assert!(again.ignored.is_empty(), "{:?}", again.ignored);
    true
}

/// Text made of the characters the list parsers care about.
fn list_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[0-9a-fA-F.:/,\\-\\[\\] tcpudyAn]{0,40}").unwrap()
}

fn ipv4_item() -> impl Strategy<Value = String> {
    (any::<[u8; 4]>(), proptest::option::of(0u8..=32)).prop_map(|(a, p)| {
        let ip = std::net::Ipv4Addr::from(a);
        p.map_or_else(|| ip.to_string(), |p| format!("{ip}/{p}"))
    })
}

fn ipv6_item() -> impl Strategy<Value = String> {
    (any::<u128>(), proptest::option::of(0u8..=128)).prop_map(|(a, p)| {
        let ip = std::net::Ipv6Addr::from(a);
        p.map_or_else(|| ip.to_string(), |p| format!("{ip}/{p}"))
    })
}

fn address_list() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![ipv4_item(), ipv6_item()], 0..6)
        .prop_flat_map(|items| {
            let n = items.len();
            (
                Just(items),
                proptest::collection::vec(prop_oneof![Just(","), Just(", "), Just(" ,")], n),
            )
        })
        .prop_map(|(items, seps)| {
            let mut s = String::new();
            for (i, (item, sep)) in items.iter().zip(seps).enumerate() {
                if i > 0 {
                    s.push_str(sep);
                }
                s.push_str(item);
            }
            s
        })
}

fn port_list() -> impl Strategy<Value = String> {
    proptest::collection::vec((any::<u16>(), proptest::option::of(any::<u16>())), 0..8).prop_map(
        |items| {
            let parts: Vec<String> = items
                .into_iter()
                .map(|(a, b)| match b {
                    Some(b) => format!("{}-{}", a.min(b), a.max(b)),
                    None => a.to_string(),
                })
                .collect();
            parts.join(",")
        },
    )
}

fn protocol_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u16..=300).prop_map(|n| n.to_string()),
        proptest::sample::select(vec![
            "tcp", "UDP", "icmp", "ICMPv6", "igmp", "gre", "esp", "ah", "sctp", "any", "", "256"
        ])
        .prop_map(str::to_owned),
    ]
}

fn port_mapping_text() -> impl Strategy<Value = String> {
    let host_ip = prop_oneof![
        Just(String::new()),
        any::<[u8; 4]>().prop_map(|a| format!("{}:", std::net::Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| format!("[{}]:", std::net::Ipv6Addr::from(a))),
    ];
    let proto = proptest::sample::select(vec!["", "/tcp", "/udp", "/UDP", "/icmp"]);
    (host_ip, any::<u16>(), any::<u16>(), proto).prop_map(|(ip, h, c, p)| format!("{ip}{h}:{c}{p}"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn acl_lists_on_arbitrary_strings(s in any::<String>()) {
        check_acl_lists(&s);
    }

    #[test]
    fn acl_lists_on_list_alphabet(s in list_text()) {
        check_acl_lists(&s);
    }

    #[test]
    fn generated_address_lists_parse_and_round_trip(s in address_list()) {
        let l = AddressList::parse("f", &s).unwrap();
        prop_assert_eq!(AddressList::parse("f", &l.to_string()).unwrap(), l);
    }

    #[test]
    fn generated_port_lists_parse_and_round_trip(s in port_list()) {
        let l = PortList::parse("f", &s).unwrap();
        prop_assert_eq!(PortList::parse("f", &l.to_string()).unwrap(), l);
    }

    #[test]
    fn generated_protocols_and_mappings(p in protocol_text(), m in port_mapping_text()) {
        check_acl_lists(&p);
        check_acl_lists(&m);
        let n: Option<u16> = p.parse().ok();
        prop_assert_eq!(Protocol::parse("f", &p).is_ok(), n.is_none_or(|n| n <= 256));
    }

    #[test]
    fn hcn_decoder_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_hcn(&bytes);
    }
}

/// Keys and fragments of HCN documents, so the generator reaches past the
/// JSON syntax into the decoder.
const KEYS: &[&str] = &[
    "ID",
    "Name",
    "Type",
    "Policies",
    "Settings",
    "Ipams",
    "Subnets",
    "IpAddressPrefix",
    "Routes",
    "NextHop",
    "DestinationPrefix",
    "HostComputeNetwork",
    "HostComputeNamespace",
    "IpConfigurations",
    "IpAddress",
    "PrefixLength",
    "MacAddress",
    "NamespaceId",
    "Resources",
    "Data",
    "Protocols",
    "Action",
    "Direction",
    "LocalAddresses",
    "RemotePorts",
    "RuleType",
    "Priority",
    "InternalPort",
    "ExternalPort",
    "Protocol",
    "VIP",
    "IsolationId",
    "NetworkAdapterName",
    "Networks",
    "Endpoints",
    "Namespaces",
    "AdditionalParams",
    "Flags",
];
const WORDS: &[&str] = &[
    "NAT",
    "L2Bridge",
    "Overlay",
    "ACL",
    "PortMapping",
    "VSID",
    "NetAdapterName",
    "Guest",
    "Host",
    "Endpoint",
    "Container",
    "Allow",
    "Block",
    "In",
    "Out",
    "Switch",
    "6",
    "256",
    "",
    "Any",
    "10.0.0.0/24",
    "10.0.0.1",
    "0.0.0.0/0",
    "80,8080",
    "1000-2000",
    "eth0",
    "web",
    "a1b2c3d4-0000-4000-8000-000000000001",
    "00-15-5D-52-C0-00",
    "fd00::/64",
];

fn hcn_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        proptest::sample::select(WORDS).prop_map(|w| json!(w)),
        any::<i64>().prop_map(|n| json!(n)),
        (0u32..70000).prop_map(|n| json!(n)),
        Just(Value::Null),
        any::<bool>().prop_map(|b| json!(b)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..7).prop_map(
                |kv| {
                    Value::Object(
                        kv.into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect::<Map<String, Value>>(),
                    )
                }
            ),
        ]
    })
}

/// A valid endpoint carrying generated ACL rules: always accepted.
fn acl_endpoint() -> impl Strategy<Value = Value> {
    let rule = (
        proptest::sample::select(vec!["Allow", "Block"]),
        proptest::sample::select(vec!["In", "Out"]),
        proptest::sample::select(vec!["6", "17", "256", ""]),
        address_list(),
        port_list(),
        proptest::option::of(proptest::sample::select(vec!["Host", "Switch"])),
        proptest::option::of(any::<u16>()),
    );
    proptest::collection::vec(rule, 0..6).prop_map(|rules| {
        let policies: Vec<Value> = rules
            .into_iter()
            .map(|(action, dir, proto, addrs, ports, rt, prio)| {
                let mut s = json!({ "Action": action, "Direction": dir, "Protocols": proto,
                                    "RemoteAddresses": addrs, "LocalPorts": ports });
                if let Some(rt) = rt {
                    s["RuleType"] = json!(rt);
                }
                if let Some(p) = prio {
                    s["Priority"] = json!(p);
                }
                json!({ "Type": "ACL", "Settings": s })
            })
            .collect();
        json!({ "Name": "ep", "HostComputeNetwork": "a1b2c3d4-0000-4000-8000-000000000001", "Policies": policies })
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hcn_decoder_on_hcn_shaped_json(v in hcn_value()) {
        check_hcn(v.to_string().as_bytes());
    }

    #[test]
    fn generated_acl_endpoints_are_accepted_and_round_trip(v in acl_endpoint()) {
        prop_assert!(check_hcn(v.to_string().as_bytes()), "refused {}", v);
    }
}
