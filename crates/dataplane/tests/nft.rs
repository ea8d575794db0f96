//! T1 tests of the nf_tables client against the real kernel, proven with real
//! TCP packets between two throwaway namespaces joined by a veth pair. Only
//! those namespaces are touched. Needs root; skips loudly otherwise.

use std::time::{Duration, Instant};

use bulkhead_dataplane::netns::NetnsGuard;
use bulkhead_dataplane::nft::*;
use bulkhead_dataplane::testing::{require_root, unique_name};

const CLIENT: [u8; 4] = [10, 99, 0, 1];

/// Two namespaces joined by a veth (`a`: 10.99.0.1 and .3 on `va`; `b`:
/// `SERVER` on `eth0`), listeners and connects: the lower tests' support.
#[allow(dead_code)]
#[path = "lower/support.rs"]
mod support;
use support::{connects, ip, listen_on, pair, Pair, SERVER};

fn input_chain() -> Chain {
    Chain::base("input", ChainType::Filter, Hook::Input, 0, Policy::Accept)
}

fn tcp_dport_into(reg: Reg) -> Vec<Expr> {
    vec![
        Expr::Meta {
            key: MetaKey::L4Proto,
            dreg: Reg::R1,
        },
        Expr::cmp_eq(Reg::R1, [libc::IPPROTO_TCP as u8]),
        Expr::Payload {
            base: PayloadBase::Transport,
            offset: 2,
            len: 2,
            dreg: reg,
        },
    ]
}

fn table() -> Table {
    Table::new(Family::Inet, "bulkhead")
}

#[test]
fn drop_rule_blocks_one_port_only() {
    if !require_root() {
        return;
    }
    let p = pair("nftdrop");
    let _l = listen_on(&p.b, SERVER, &[8080, 8081]);
    let t = table();
    let mut rule = tcp_dport_into(Reg::R1);
    rule.extend([
        Expr::cmp_eq(Reg::R1, 8081u16.to_be_bytes()),
        Expr::Counter,
        Expr::Verdict(Verdict::Drop),
    ]);
    let mut b = Batch::new();
    b.add_table(&t)
        .add_chain(&t, &input_chain())
        .add_rule(&t, &Rule::new("input", rule).with_userdata(*b"acl-7"));
    let mut nft = NftSocket::open(Some(p.b.path())).unwrap();
    nft.commit(b).unwrap();

    assert!(connects(&p.a, SERVER, 8080));
    assert!(!connects(&p.a, SERVER, 8081));
    let rules = nft.list_rules(&t, Some("input")).unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].userdata.as_deref(), Some(&b"acl-7"[..]));
    assert!(
        rules[0].counter().unwrap().0 >= 1,
        "the drop rule counted the SYN"
    );
    assert!(nft.table_exists(&t).unwrap());
    assert!(
        !NftSocket::open(Some(p.a.path()))
            .unwrap()
            .table_exists(&t)
            .unwrap(),
        "client untouched"
    );
    let chains = nft.list_chains(&t).unwrap();
    assert_eq!(chains[0].base.as_ref().map(|b| b.0), Some(Hook::Input));

    let mut del = Batch::new();
    del.delete_rule(&t, "input", rules[0].handle);
    nft.commit(del).unwrap();
    assert!(connects(&p.a, SERVER, 8081));
    let mut gone = Batch::new();
    gone.destroy_table(&t).destroy_table(&t);
    nft.commit(gone).unwrap();
    assert!(!nft.table_exists(&t).unwrap());
}

#[test]
fn interval_vmap_drops_a_port_range() {
    if !require_root() {
        return;
    }
    let p = pair("nftrange");
    let ports = [999, 1000, 1500, 2000, 2001];
    let _l = listen_on(&p.b, SERVER, &ports);
    let t = table();
    let set = Set::vmap("ports", SetKey::single(KeyType::InetService))
        .with_flags(SetFlags::INTERVAL)
        .with_id(1);
    let range = Element::interval(
        &1000u16.to_be_bytes(),
        &2000u16.to_be_bytes(),
        Some(ElemData::Verdict(Verdict::Drop)),
    );
    let mut rule = tcp_dport_into(Reg::R1);
    rule.push(Expr::Lookup {
        set: "ports".into(),
        set_id: Some(1),
        sreg: Reg::R1,
        dreg: Some(Reg::VERDICT),
        invert: false,
    });
    let mut b = Batch::new();
    b.add_table(&t)
        .add_chain(&t, &input_chain())
        .add_set(&t, &set)
        .add_elements(&t, &set, &range);
    b.add_rule(&t, &Rule::new("input", rule));
    let mut nft = NftSocket::open(Some(p.b.path())).unwrap();
    nft.commit(b).unwrap();

    let open: Vec<bool> = ports
        .iter()
        .map(|&port| connects(&p.a, SERVER, port))
        .collect();
    assert_eq!(open, [true, false, false, false, true]);
    assert_eq!(nft.list_elements(&t, "ports").unwrap().len(), 2);

    let mut del = Batch::new();
    del.delete_elements(&t, "ports", &range);
    nft.commit(del).unwrap();
    assert!(connects(&p.a, SERVER, 1500));
}

#[test]
fn concatenated_range_vmap_matches_saddr_and_dport() {
    if !require_root() {
        return;
    }
    let p = pair("nftconcat");
    // The second client address (10.99.0.3) is for traffic to the server's second address.
    ip(&[
        "-n",
        p.b.name(),
        "addr",
        "add",
        "10.99.0.4/24",
        "dev",
        "eth0",
    ]);
    ip(&[
        "-n",
        p.a.name(),
        "route",
        "add",
        "10.99.0.4/32",
        "dev",
        "va",
        "src",
        "10.99.0.3",
    ]);
    let _l = listen_on(&p.b, [0, 0, 0, 0], &[1500, 3000]);
    let t = table();
    let key = SetKey::concat(&[KeyType::Ipv4Addr, KeyType::InetService]).unwrap();
    let layout = key.layout();
    let set = Set::vmap("flows", key).with_flags(SetFlags::INTERVAL);
    let start = layout.key(&[&CLIENT, &1000u16.to_be_bytes()]).unwrap();
    let end = layout.key(&[&CLIENT, &2000u16.to_be_bytes()]).unwrap();
    let elem = Element::range(start, end, Some(ElemData::Verdict(Verdict::Drop)));
    let rule = vec![
        Expr::Meta {
            key: MetaKey::NfProto,
            dreg: Reg::R1,
        },
        Expr::cmp_eq(Reg::R1, [libc::NFPROTO_IPV4 as u8]),
        Expr::Meta {
            key: MetaKey::L4Proto,
            dreg: Reg::R1,
        },
        Expr::cmp_eq(Reg::R1, [libc::IPPROTO_TCP as u8]),
        Expr::Payload {
            base: PayloadBase::Network,
            offset: 12,
            len: 4,
            dreg: layout.reg(0),
        },
        Expr::Payload {
            base: PayloadBase::Transport,
            offset: 2,
            len: 2,
            dreg: layout.reg(1),
        },
        Expr::Lookup {
            set: "flows".into(),
            set_id: None,
            sreg: layout.reg(0),
            dreg: Some(Reg::VERDICT),
            invert: false,
        },
    ];
    let mut b = Batch::new();
    b.add_table(&t)
        .add_chain(&t, &input_chain())
        .add_set(&t, &set)
        .add_elements(&t, "flows", &[elem]);
    b.add_rule(&t, &Rule::new("input", rule));
    let mut nft = NftSocket::open(Some(p.b.path())).unwrap();
    nft.commit(b).unwrap();
    let sets = nft.list_sets(&t).unwrap();
    assert_eq!(sets[0].key_len, 8);

    assert!(
        !connects(&p.a, SERVER, 1500),
        "10.99.0.1 . 1500 is in the range"
    );
    assert!(connects(&p.a, SERVER, 3000), "port outside the range");
    assert!(
        connects(&p.a, [10, 99, 0, 4], 1500),
        "10.99.0.3 is outside the range"
    );
}

#[test]
fn iifname_vmap_jumps_to_the_endpoint_chain() {
    if !require_root() {
        return;
    }
    let p = pair("nftvmap");
    let _l = listen_on(&p.b, SERVER, &[8080, 8081]);
    let t = table();
    let set = Set::vmap("ports", SetKey::single(KeyType::IfName));
    let mut ep_rule = tcp_dport_into(Reg::R1);
    ep_rule.extend([
        Expr::cmp_eq(Reg::R1, 8081u16.to_be_bytes()),
        Expr::Verdict(Verdict::Drop),
    ]);
    let dispatch = vec![
        Expr::Meta {
            key: MetaKey::IifName,
            dreg: Reg::R1,
        },
        Expr::Lookup {
            set: "ports".into(),
            set_id: None,
            sreg: Reg::R1,
            dreg: Some(Reg::VERDICT),
            invert: false,
        },
    ];
    let elem = Element::new(ifname_key("eth0")).with_verdict(Verdict::Jump("ep".into()));
    let mut b = Batch::new();
    b.add_table(&t)
        .add_chain(&t, &input_chain())
        .add_chain(&t, &Chain::regular("ep"));
    b.add_rule(&t, &Rule::new("ep", ep_rule)).add_set(&t, &set);
    b.add_elements(&t, "ports", std::slice::from_ref(&elem))
        .add_rule(&t, &Rule::new("input", dispatch));
    let mut nft = NftSocket::open(Some(p.b.path())).unwrap();
    nft.commit(b).unwrap();
    assert!(connects(&p.a, SERVER, 8080));
    assert!(!connects(&p.a, SERVER, 8081));
    let listed = nft.list_elements(&t, "ports").unwrap();
    assert_eq!(listed, vec![elem.clone()]);

    let mut b = Batch::new();
    b.delete_elements(&t, "ports", &[elem]);
    nft.commit(b).unwrap();
    assert!(
        connects(&p.a, SERVER, 8081),
        "no dispatch without the element"
    );
}

#[test]
fn ct_state_established_lets_replies_in() {
    if !require_root() {
        return;
    }
    let p = pair("nftct");
    let _server = listen_on(&p.b, SERVER, &[8080]);
    let _client = listen_on(&p.a, CLIENT, &[7070]);
    let t = table();
    let drop_input = Chain::base("input", ChainType::Filter, Hook::Input, 0, Policy::Drop);
    let mask = (CtState::ESTABLISHED | CtState::RELATED)
        .bits()
        .to_ne_bytes();
    let established = vec![
        Expr::Ct {
            key: CtKey::State,
            dreg: Reg::R1,
            direction: None,
        },
        Expr::Bitwise {
            sreg: Reg::R1,
            dreg: Reg::R1,
            mask: mask.to_vec(),
            xor: vec![0; 4],
        },
        Expr::Cmp {
            sreg: Reg::R1,
            op: CmpOp::Neq,
            data: vec![0; 4],
        },
        Expr::Verdict(Verdict::Accept),
    ];
    let mut nft = NftSocket::open(Some(p.a.path())).unwrap();
    let mut b = Batch::new();
    b.add_table(&t).add_chain(&t, &drop_input);
    nft.commit(b).unwrap();
    assert!(
        !connects(&p.a, SERVER, 8080),
        "policy drop eats the SYN-ACK"
    );

    let mut b = Batch::new();
    b.add_rule(&t, &Rule::new("input", established));
    nft.commit(b).unwrap();
    assert!(connects(&p.a, SERVER, 8080), "replies are established");
    assert!(
        !connects(&p.b, CLIENT, 7070),
        "new inbound connections still dropped"
    );
}

#[test]
fn a_failing_batch_applies_nothing() {
    if !require_root() {
        return;
    }
    let ns = NetnsGuard::create(&unique_name("nftatomic")).unwrap();
    let t = table();
    let mut nft = NftSocket::open(Some(ns.path())).unwrap();
    let mut b = Batch::new();
    b.add_table(&t)
        .add_chain(&t, &input_chain())
        .add_chain(&t, &Chain::regular("ep"));
    b.add_rule(&t, &Rule::new("input", vec![Expr::Counter]));
    b.add_rule(
        &t,
        &Rule::new("missing", vec![Expr::Verdict(Verdict::Accept)]),
    );
    let err = nft.commit(b).unwrap_err();
    let Error::Rejected(e) = &err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(
        (e.op, e.object.as_str(), e.errno, e.index),
        ("NEWRULE", "inet bulkhead missing", libc::ENOENT, 4)
    );
    println!("error reads: {err}");
    assert!(!nft.table_exists(&t).unwrap());
    assert!(nft.list_tables(None).unwrap().is_empty());

    let mut b = Batch::new();
    b.delete_table(&t);
    assert_eq!(nft.commit(b).unwrap_err().errno(), Some(libc::ENOENT));
    let mut b = Batch::new();
    b.destroy_table(&t);
    nft.commit(b).unwrap();
}

#[test]
fn dnat_with_fib_local_and_masquerade_are_accepted() {
    if !require_root() {
        return;
    }
    let p = pair("nftnat");
    let _l = listen_on(&p.b, SERVER, &[8080]);
    let t = Table::new(Family::Ip, "bulkhead_nat");
    let pre = Chain::base(
        "prerouting",
        ChainType::Nat,
        Hook::Prerouting,
        -100,
        Policy::Accept,
    );
    let post = Chain::base(
        "postrouting",
        ChainType::Nat,
        Hook::Postrouting,
        100,
        Policy::Accept,
    );
    let mut dnat = tcp_dport_into(Reg::R1);
    dnat.extend([
        Expr::cmp_eq(Reg::R1, 9000u16.to_be_bytes()),
        Expr::Fib {
            flags: FibFlags::DADDR,
            result: FibResult::AddrType,
            dreg: Reg::R1,
        },
        Expr::cmp_eq(Reg::R1, 2u32.to_ne_bytes()), // RTN_LOCAL
        Expr::Immediate {
            dreg: Reg::R1,
            data: SERVER.to_vec(),
        },
        Expr::Immediate {
            dreg: Reg::R2,
            data: 8080u16.to_be_bytes().to_vec(),
        },
        Expr::Nat {
            kind: NatKind::Dnat,
            family: Family::Ip,
            addr: Some(RegRange {
                min: Reg::R1,
                max: Reg::R1,
            }),
            proto: Some(RegRange {
                min: Reg::R2,
                max: Reg::R2,
            }),
            flags: NatFlags::MAP_IPS | NatFlags::PROTO_SPECIFIED,
        },
    ]);
    let masq = vec![
        Expr::Meta {
            key: MetaKey::OifName,
            dreg: Reg::R1,
        },
        Expr::cmp_eq(Reg::R1, ifname_key("nonexistent0")),
        Expr::Masquerade {
            proto: None,
            flags: NatFlags::EMPTY,
        },
    ];
    let mut b = Batch::new();
    b.add_table(&t).add_chain(&t, &pre).add_chain(&t, &post);
    b.add_rule(&t, &Rule::new("prerouting", dnat))
        .add_rule(&t, &Rule::new("postrouting", masq));
    let mut nft = NftSocket::open(Some(p.b.path())).unwrap();
    nft.commit(b).unwrap();
    assert!(
        connects(&p.a, SERVER, 9000),
        "9000 is DNATed to the 8080 listener"
    );
    let names: Vec<String> = nft.list_rules(&t, Some("postrouting")).unwrap()[0]
        .exprs
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(names, ["meta", "cmp", "masq"]);
}

#[test]
fn single_element_updates_stay_fast_in_a_10k_interval_vmap() {
    if !require_root() {
        return;
    }
    let p = pair("nftbig");
    let _l = listen_on(&p.b, SERVER, &[8080]);
    let t = table();
    let set = Set::vmap("saddr", SetKey::single(KeyType::Ipv4Addr)).with_flags(SetFlags::INTERVAL);
    let verdicts = [Verdict::Drop, Verdict::Accept, Verdict::Jump("ep".into())];
    let mut elems = Vec::with_capacity(20_000);
    for i in 0..10_000u32 {
        let base = u32::from_be_bytes([172, 16, 0, 0]) + (i << 8);
        let v = ElemData::Verdict(verdicts[i as usize % 3].clone());
        elems.extend(Element::interval(
            &base.to_be_bytes(),
            &(base + 127).to_be_bytes(),
            Some(v),
        ));
    }
    let dispatch = vec![
        Expr::Meta {
            key: MetaKey::NfProto,
            dreg: Reg::R1,
        },
        Expr::cmp_eq(Reg::R1, [libc::NFPROTO_IPV4 as u8]),
        Expr::Payload {
            base: PayloadBase::Network,
            offset: 12,
            len: 4,
            dreg: Reg::R1,
        },
        Expr::Lookup {
            set: "saddr".into(),
            set_id: None,
            sreg: Reg::R1,
            dreg: Some(Reg::VERDICT),
            invert: false,
        },
    ];
    let mut b = Batch::new();
    b.add_table(&t)
        .add_chain(&t, &input_chain())
        .add_chain(&t, &Chain::regular("ep"));
    b.add_chain(
        &t,
        &Chain::base("output", ChainType::Filter, Hook::Output, 0, Policy::Accept),
    );
    b.add_set(&t, &set)
        .add_elements(&t, "saddr", &elems)
        .add_rule(&t, &Rule::new("input", dispatch));
    let (msgs, bytes) = (b.len(), b.encoded_len());
    let mut nft = NftSocket::open(Some(p.b.path())).unwrap();
    let t0 = Instant::now();
    nft.commit(b).unwrap();
    let create = t0.elapsed();

    let client = Element::interval(&CLIENT, &CLIENT, Some(ElemData::Verdict(Verdict::Drop)));
    let (add_one, del_one) = add_delete_medians(&mut nft, &t, "saddr", &client, &p);
    let mut small = Batch::new();
    small.add_set(
        &t,
        &Set {
            name: "small".into(),
            ..set.clone()
        },
    );
    nft.commit(small).unwrap();
    let (add_small, del_small) = add_delete_medians(&mut nft, &t, "small", &client, &p);
    let exact = Set::vmap("exact", SetKey::single(KeyType::Ipv4Addr));
    let exact_elems: Vec<Element> = (0..10_000u32)
        .map(|i| {
            Element::new((u32::from_be_bytes([172, 16, 0, 0]) + i).to_be_bytes())
                .with_verdict(Verdict::Drop)
        })
        .collect();
    let mut b = Batch::new();
    b.add_set(&t, &exact)
        .add_elements(&t, "exact", &exact_elems);
    nft.commit(b).unwrap();
    let (add_hash, del_hash) = add_delete_medians(
        &mut nft,
        &t,
        "exact",
        &[Element::new(CLIENT).with_verdict(Verdict::Drop)],
        &p,
    );
    assert_eq!(nft.list_elements(&t, "saddr").unwrap().len(), 20_000);
    println!("TIMING median of 9, same run: 1-element interval map add {add_small:?} / delete {del_small:?}");
    println!("TIMING median of 9, same run: 10k-element hash (exact) vmap add {add_hash:?} / delete {del_hash:?}");
    println!(
        "TIMING table+3 chains+10k-interval vmap ({msgs} msgs, {bytes} bytes): {create:?}; median add one element: {add_one:?}; median delete one element: {del_one:?}"
    );
}

/// Median commit times of adding and deleting `elems` in `set`, 9 rounds;
/// for the 10k map, also proves each add drops the client and each delete
/// lets it in again (first round only, to keep the test short).
fn add_delete_medians(
    nft: &mut NftSocket,
    t: &Table,
    set: &str,
    elems: &[Element],
    p: &Pair,
) -> (Duration, Duration) {
    let (mut adds, mut dels) = (Vec::new(), Vec::new());
    for round in 0..9 {
        let mut add = Batch::new();
        add.add_elements(t, set, elems);
        let t0 = Instant::now();
        nft.commit(add).unwrap();
        adds.push(t0.elapsed());
        if round == 0 && set == "saddr" {
            assert!(
                !connects(&p.a, SERVER, 8080),
                "the new element drops the client"
            );
        }
        let mut del = Batch::new();
        del.delete_elements(t, set, elems);
        let t1 = Instant::now();
        nft.commit(del).unwrap();
        dels.push(t1.elapsed());
        if round == 0 && set == "saddr" {
            assert!(
                connects(&p.a, SERVER, 8080),
                "deleting it lets the client in"
            );
        }
    }
    adds.sort();
    dels.sort();
    (adds[4], dels[4])
}
