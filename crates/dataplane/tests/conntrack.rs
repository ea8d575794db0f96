//! T1 test of conntrack deletion: an established TCP flow survives a new drop
//! rule (because `ct state established accept` comes first) until its
//! conntrack entry is deleted; then it stalls. Two throwaway namespaces
//! joined by a veth; nothing else is touched. Needs root; skips loudly.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use bulkhead_dataplane::conntrack::{Conntrack, Tuple};
use bulkhead_dataplane::netns::{self, NetnsGuard};
use bulkhead_dataplane::nft::*;
use bulkhead_dataplane::testing::{require_root, unique_name};

const CLIENT: [u8; 4] = [10, 98, 0, 1];
const SERVER: [u8; 4] = [10, 98, 0, 2];

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Echoes each accepted connection until it closes or idles for 5 s.
fn echo_server(ns: &NetnsGuard, port: u16) {
    let l = netns::run_in(Some(ns.path()), move || {
        TcpListener::bind(SocketAddr::from((SERVER, port))).unwrap()
    })
    .unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            if s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
}

fn connect(ns: &NetnsGuard, port: u16) -> TcpStream {
    let s = netns::run_in(Some(ns.path()), move || {
        TcpStream::connect_timeout(
            &SocketAddr::from((SERVER, port)),
            Duration::from_millis(500),
        )
        .unwrap()
    })
    .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    s
}

fn echoes(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4];
    s.write_all(b"ping").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"ping"
}

#[test]
fn deleting_conntrack_entries_cuts_established_flows() {
    if !require_root() {
        return;
    }
    let a = NetnsGuard::create(&unique_name("ct-a")).unwrap();
    let b = NetnsGuard::create(&unique_name("ct-b")).unwrap();
    ip(&[
        "-n",
        a.name(),
        "link",
        "add",
        "va",
        "type",
        "veth",
        "peer",
        "name",
        "vb",
        "netns",
        b.name(),
    ]);
    ip(&["-n", a.name(), "addr", "add", "10.98.0.1/24", "dev", "va"]);
    ip(&["-n", b.name(), "addr", "add", "10.98.0.2/24", "dev", "vb"]);
    ip(&["-n", a.name(), "link", "set", "va", "up"]);
    ip(&["-n", b.name(), "link", "set", "vb", "up"]);

    let t = Table::new(Family::Inet, "bulkhead");
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
    let mut nft = NftSocket::open(Some(b.path())).unwrap();
    let mut batch = Batch::new();
    batch.add_table(&t);
    batch.add_chain(
        &t,
        &Chain::base("input", ChainType::Filter, Hook::Input, 0, Policy::Accept),
    );
    batch.add_rule(&t, &Rule::new("input", established));
    nft.commit(batch).unwrap();

    echo_server(&b, 8080);
    echo_server(&b, 8081);
    let mut first = connect(&a, 8080);
    let mut second = connect(&a, 8081);
    assert!(echoes(&mut first) && echoes(&mut second));

    let drop_ports = vec![
        Expr::Meta {
            key: MetaKey::L4Proto,
            dreg: Reg::R1,
        },
        Expr::cmp_eq(Reg::R1, [libc::IPPROTO_TCP as u8]),
        Expr::Payload {
            base: PayloadBase::Transport,
            offset: 2,
            len: 2,
            dreg: Reg::R1,
        },
        Expr::Range {
            sreg: Reg::R1,
            op: RangeOp::Eq,
            from: 8080u16.to_be_bytes().to_vec(),
            to: 8081u16.to_be_bytes().to_vec(),
        },
        Expr::Verdict(Verdict::Drop),
    ];
    let mut batch = Batch::new();
    batch.add_rule(&t, &Rule::new("input", drop_ports));
    nft.commit(batch).unwrap();
    assert!(
        echoes(&mut first),
        "established flows pass the new drop rule"
    );
    assert!(
        !netns::run_in(Some(a.path()), || {
            TcpStream::connect_timeout(
                &SocketAddr::from((SERVER, 8080)),
                Duration::from_millis(300),
            )
            .is_ok()
        })
        .unwrap(),
        "new connections are dropped"
    );

    let mut ct = Conntrack::open(Some(b.path())).unwrap();
    let entries = ct.list().unwrap();
    let client = IpAddr::from(CLIENT);
    let to_8081 = entries
        .iter()
        .find(|e| e.orig.src == client && e.orig.dport == 8081)
        .expect("entry for 8081");
    // Delete the 8081 flow by its reply-direction tuple, the 8080 one by address.
    let reply = to_8081.reply.expect("reply tuple");
    assert_eq!(
        reply,
        Tuple {
            src: IpAddr::from(SERVER),
            dst: client,
            proto: 6,
            sport: 8081,
            dport: to_8081.orig.sport
        }
    );
    assert_eq!(ct.delete_flow(&reply).unwrap(), 1);
    assert!(
        !echoes(&mut second),
        "the 8081 flow stalls once its entry is gone"
    );
    assert!(echoes(&mut first), "the 8080 flow is untouched");
    let removed = ct.delete_by_addr(client).unwrap();
    assert!(removed >= 1, "removed {removed}");
    assert!(
        !echoes(&mut first),
        "the 8080 flow stalls once its entry is gone"
    );
    // Packets of the cut flows are dropped before conntrack confirms them,
    // so no entry for them comes back.
    assert!(ct.list().unwrap().iter().all(|e| e.orig.src != client));
}

/// Two namespaces joined by a veth: in `b` a "host" address .2 with an
/// echo server on 8081, and an "endpoint" address .3 published on the
/// host's port 9090 (DNAT to .3:8080); from `a`, one connection to each.
/// Returns the namespaces, the published flow and the unrelated one.
fn published_world() -> (NetnsGuard, NetnsGuard, TcpStream, TcpStream) {
    let a = NetnsGuard::create(&unique_name("ct-da")).unwrap();
    let b = NetnsGuard::create(&unique_name("ct-db")).unwrap();
    ip(&[
        "-n",
        a.name(),
        "link",
        "add",
        "va",
        "type",
        "veth",
        "peer",
        "name",
        "vb",
        "netns",
        b.name(),
    ]);
    ip(&["-n", a.name(), "addr", "add", "10.98.0.1/24", "dev", "va"]);
    ip(&["-n", b.name(), "addr", "add", "10.98.0.2/24", "dev", "vb"]);
    // The "endpoint" address, behind the "host" address .2.
    ip(&["-n", b.name(), "addr", "add", "10.98.0.3/32", "dev", "vb"]);
    ip(&["-n", a.name(), "link", "set", "va", "up"]);
    ip(&["-n", b.name(), "link", "set", "vb", "up"]);
    for cmd in [
        "add table ip pubt",
        "add chain ip pubt pre { type nat hook prerouting priority -100 ; }",
        "add rule ip pubt pre tcp dport 9090 dnat to 10.98.0.3:8080",
    ] {
        let out = Command::new("ip")
            .args(["netns", "exec", b.name(), "nft", cmd])
            .output()
            .expect("run nft");
        assert!(out.status.success(), "nft {cmd}: {out:?}");
    }
    let l = netns::run_in(Some(b.path()), || {
        TcpListener::bind(SocketAddr::from(([10, 98, 0, 3], 8080))).unwrap()
    })
    .unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            if s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    echo_server(&b, 8081); // unrelated: to the host address itself
    let mut published = netns::run_in(Some(a.path()), || {
        TcpStream::connect_timeout(
            &SocketAddr::from((SERVER, 9090)),
            Duration::from_millis(500),
        )
        .unwrap()
    })
    .unwrap();
    published
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut other = connect(&a, 8081);
    assert!(echoes(&mut published) && echoes(&mut other));
    (a, b, published, other)
}

/// A published port's flow is DNATed: its original tuple names the host
/// address, only the reply tuple names the endpoint. Deleting the
/// endpoint's flows must find it by the reply tuple (the old, original-only
/// match misses it: shown first), and the kernel does the filtering (an
/// unrelated flow is not returned).
#[test]
fn deleting_an_endpoints_flows_finds_dnat_flows_by_reply() {
    if !require_root() {
        return;
    }
    let (_a, b, _published, mut other) = published_world();
    let endpoint = IpAddr::from([10, 98, 0, 3]);
    let mut ct = Conntrack::open(Some(b.path())).unwrap();
    // Weakened: the original-direction match sees no flow of the endpoint.
    let by_orig: Vec<_> = ct
        .list()
        .unwrap()
        .into_iter()
        .filter(|e| e.orig.src == endpoint || e.orig.dst == endpoint)
        .collect();
    assert!(by_orig.is_empty(), "{by_orig:?}");
    // The kernel-filtered dumps: the reply source finds exactly it.
    let found = ct.involving(endpoint).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].orig.dport, 9090);
    assert_eq!(found[0].reply.expect("reply").src, endpoint);
    assert!(ct.list_matching(endpoint, false, true).unwrap().is_empty());
    assert_eq!(ct.delete_by_addr(endpoint).unwrap(), 1);
    // The published flow's entry is gone; the unrelated flow keeps its own.
    assert!(ct.involving(endpoint).unwrap().is_empty());
    assert!(echoes(&mut other), "the unrelated flow is untouched");
}

/// Several addresses at once (a burst of endpoint deletes): one dump of the
/// namespace, matched in either direction, removes the published flow of
/// the endpoint (found by its reply source only) and leaves the unrelated
/// flow; an address without flows is no error.
#[test]
fn deleting_the_flows_of_several_addresses_at_once() {
    if !require_root() {
        return;
    }
    let (_a, b, _published, mut other) = published_world();
    let endpoint = IpAddr::from([10, 98, 0, 3]);
    let idle = IpAddr::from([10, 98, 0, 99]);
    let mut ct = Conntrack::open(Some(b.path())).unwrap();
    assert_eq!(ct.involving(endpoint).unwrap().len(), 1);
    assert_eq!(ct.delete_involving_any(&[idle, endpoint]).unwrap(), 1);
    assert!(ct.involving(endpoint).unwrap().is_empty());
    assert!(echoes(&mut other), "the unrelated flow is untouched");
    assert!(!ct.involving(IpAddr::from(CLIENT)).unwrap().is_empty());
}

/// One address in a small namespace (the usual endpoint delete): the
/// kernel's own entry count says how many entries there are (it agrees with
/// a full dump), so one unfiltered dump replaces the four filtered ones; it
/// still finds the published flow by its reply source only and leaves the
/// unrelated flow.
#[test]
fn deleting_one_addresss_flows_in_a_small_namespace() {
    if !require_root() {
        return;
    }
    let (_a, b, _published, mut other) = published_world();
    let endpoint = IpAddr::from([10, 98, 0, 3]);
    let mut ct = Conntrack::open(Some(b.path())).unwrap();
    let all = ct.list().unwrap().len();
    let counted = ct.count().unwrap() as usize;
    // Both flows (published and unrelated) are tracked in `b`; the count is
    // the namespace's, not the host's.
    assert!(counted >= 2, "count {counted}");
    assert!(counted.abs_diff(all) <= 1, "count {counted}, dumped {all}");
    assert!(counted <= bulkhead_dataplane::conntrack::SMALL_TABLE as usize);
    assert_eq!(ct.involving(endpoint).unwrap().len(), 1);
    assert_eq!(ct.delete_involving_any(&[endpoint]).unwrap(), 1);
    assert!(ct.involving(endpoint).unwrap().is_empty());
    assert!(echoes(&mut other), "the unrelated flow is untouched");
}

/// The flows an ACL change checks (`Kernel::flows`): in a namespace that
/// tracks nothing, none (the kernel's count says so, nothing is dumped);
/// in a small one (copied out in one dump, matched here), exactly what the
/// two kernel-filtered dumps by original source and destination return.
#[test]
fn flows_of_an_address_match_the_filtered_dumps() {
    use bulkhead_dataplane::host::HostKernel;
    use bulkhead_dataplane::kernel::Kernel;
    if !require_root() {
        return;
    }
    let (a, b, _published, _other) = published_world();
    let empty = NetnsGuard::create(&unique_name("ct-e")).unwrap();
    let kernel = HostKernel::open(Some(a.path())).expect("kernel");
    assert_eq!(
        Conntrack::open(Some(empty.path()))
            .unwrap()
            .count()
            .unwrap(),
        0
    );
    assert!(kernel
        .flows(Some(empty.path()), IpAddr::from(CLIENT))
        .unwrap()
        .is_empty());
    let mut ct = Conntrack::open(Some(b.path())).unwrap();
    assert!(ct.count().unwrap() >= 2);
    for last in [1u8, 2, 3, 99] {
        let addr = IpAddr::from([10, 98, 0, last]);
        let mut want: Vec<_> = ct.list_matching(addr, false, true).unwrap();
        want.extend(ct.list_matching(addr, false, false).unwrap());
        let mut want: Vec<_> = want
            .iter()
            .map(|e| (e.orig.src, e.orig.dst, e.orig.dport))
            .collect();
        want.sort();
        want.dedup();
        let mut got: Vec<_> = kernel
            .flows(Some(b.path()), addr)
            .unwrap()
            .iter()
            .map(|f| (f.src, f.dst, f.dst_port.unwrap_or(0)))
            .collect();
        got.sort();
        assert_eq!(got, want, "{addr}");
        assert_eq!(!got.is_empty(), last < 3, "{addr}: {got:?}");
    }
}

/// A deleted endpoint's host flows, forgotten through the kernel
/// (`Kernel::forget_host_flows`, gathered and walked later on the flows
/// reaper): gone once `settle_flows` returns (what a create reusing the
/// address waits for), the unrelated flow kept.
#[test]
fn forgotten_host_flows_are_gone_once_settled() {
    use bulkhead_dataplane::host::HostKernel;
    use bulkhead_dataplane::kernel::Kernel;
    if !require_root() {
        return;
    }
    let (_a, b, _published, mut other) = published_world();
    let endpoint = IpAddr::from([10, 98, 0, 3]);
    let kernel = HostKernel::open(Some(b.path())).expect("kernel");
    let mut ct = Conntrack::open(Some(b.path())).unwrap();
    assert_eq!(ct.involving(endpoint).unwrap().len(), 1);
    kernel.forget_host_flows(endpoint);
    kernel.forget_host_flows(IpAddr::from([10, 98, 0, 99]));
    kernel.settle_flows();
    assert!(ct.involving(endpoint).unwrap().is_empty());
    assert!(echoes(&mut other), "the unrelated flow is untouched");
}
