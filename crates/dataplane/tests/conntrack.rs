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
