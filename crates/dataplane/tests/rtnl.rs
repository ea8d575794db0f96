//! T1 tests of the rtnetlink and sysctl layer against the real kernel.
//!
//! Every test builds its own throwaway namespaces (`bht-…`), including a fake
//! "host", and proves what it set up with real packets between them. Nothing
//! touches the machine's own namespace except reads that check it was left
//! alone.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use bulkhead_dataplane::netns::{self, NetnsGuard};
use bulkhead_dataplane::rtnl::{
    Batch, MacvlanMode, MacvlanSpec, Neighbour, Route, Rtnl, TapSpec, VethSpec, VxlanSpec,
};
use bulkhead_dataplane::sysctl;
use bulkhead_dataplane::testing::{require_root, unique_name};

const WAIT: Duration = Duration::from_secs(5);

fn ns(tag: &str) -> NetnsGuard {
    let guard = NetnsGuard::create(&unique_name(tag)).expect("create netns");
    rtnl(&guard)
        .execute(Batch::new().set_up("lo"))
        .expect("lo up");
    guard
}

fn rtnl(ns: &NetnsGuard) -> Rtnl {
    Rtnl::in_netns(ns.path()).expect("open rtnl")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn index(r: &mut Rtnl, name: &str) -> u32 {
    r.link_index(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no link {name}"))
}

/// `ip -n NS ARGS…`, for checks only (operations never spawn processes).
fn ip_cmd(ns: &NetnsGuard, args: &[&str]) -> String {
    let out = Command::new("ip")
        .arg("-n")
        .arg(ns.name())
        .args(args)
        .output()
        .expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP echo server inside `ns` on `addr`, serving one connection.
fn tcp_echo(ns: &NetnsGuard, addr: SocketAddr) -> std::thread::JoinHandle<()> {
    let l: TcpListener = netns::run_in(Some(ns.path()), || TcpListener::bind(addr))
        .unwrap()
        .expect("bind tcp");
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 64];
            s.set_read_timeout(Some(WAIT)).unwrap();
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = s.write_all(&buf[..n]);
        }
    })
}

fn tcp_roundtrip(from: &NetnsGuard, to: SocketAddr) -> std::io::Result<String> {
    let mut s = netns::run_in(Some(from.path()), || TcpStream::connect_timeout(&to, WAIT))??;
    s.set_read_timeout(Some(WAIT))?;
    s.write_all(b"hello")?;
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn udp_oneway(from: &NetnsGuard, to_ns: &NetnsGuard, to: SocketAddr) -> std::io::Result<Vec<u8>> {
    let rx = netns::run_in(Some(to_ns.path()), || UdpSocket::bind(to))??;
    rx.set_read_timeout(Some(WAIT))?;
    let any: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .unwrap();
    let tx = netns::run_in(Some(from.path()), || UdpSocket::bind(any))??;
    // Early datagrams may be lost while neighbours resolve: retry a few times.
    for _ in 0..20 {
        tx.send_to(b"ping", to)?;
        rx.set_read_timeout(Some(Duration::from_millis(250)))?;
        let mut buf = [0u8; 16];
        if let Ok((n, _)) = rx.recv_from(&mut buf) {
            return Ok(buf[..n].to_vec());
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no datagram",
    ))
}

/// Plugs a nat-style routed endpoint into `host`: veth `port`/`eth0`,
/// addresses, host routes and default routes. Returns nothing: the packets
/// tell whether it worked.
fn plug(host: &mut Rtnl, ep: &NetnsGuard, port: &str, v4: &str, v6: &str, n: u8) {
    let veth = VethSpec {
        name: port,
        peer_name: "eth0",
        peer_netns: Some(ep.path()),
        peer_mac: Some([0x02, 0xbb, 0, 0, 0, n]),
        mtu: Some(1400),
        up: true,
        ..Default::default()
    };
    let found = host.execute_and_find(Batch::new().create_veth(&veth).unwrap(), &[port]);
    let hport = found.unwrap()[0]
        .clone()
        .expect("port found in the same round trip");
    assert!(hport.up && hport.mtu == 1400);
    let pidx = hport.index;
    host.execute(
        Batch::new()
            .add_address(pidx, ip("fe80::1"), 64)
            .add_route(&Route::host(ip(v4), pidx))
            .add_route(&Route::host(ip(v6), pidx)),
    )
    .unwrap();
    let mut e = rtnl(ep);
    let eth0 = e
        .link("eth0")
        .unwrap()
        .expect("eth0 made in the endpoint netns");
    assert_eq!((eth0.mtu, eth0.mac), (1400, Some([0x02, 0xbb, 0, 0, 0, n])));
    e.execute(
        Batch::new()
            .set_up("eth0")
            .add_address(eth0.index, ip(v4), 24)
            .add_address(eth0.index, ip(v6), 128)
            .add_route(&Route::default_via(ip("10.88.0.1"), eth0.index, true))
            .add_route(&Route::default_via(ip("fe80::1"), eth0.index, false)),
    )
    .unwrap();
}

#[test]
fn routed_ports_carry_tcp_and_udp_over_v4_and_v6() {
    if !require_root() {
        return;
    }
    let own_forward = sysctl::read(None, "net.ipv4.ip_forward").unwrap();
    let (h, e1, e2) = (ns("rt-host"), ns("rt-ep1"), ns("rt-ep2"));
    let mut host = rtnl(&h);
    // The host owns the gateway address (on lo: this kernel has no dummy).
    let lo = index(&mut host, "lo");
    host.execute(Batch::new().add_address(lo, ip("10.88.0.1"), 32))
        .unwrap();
    plug(&mut host, &e1, "bhp1", "10.88.0.2", "fd00:88::2", 1);
    plug(&mut host, &e2, "bhp2", "10.88.0.3", "fd00:88::3", 2);
    sysctl::write_all(
        Some(h.path()),
        &[
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv4.conf.bhp1.proxy_arp", "1"),
            ("net.ipv4.conf.bhp2.proxy_arp", "1"),
        ],
    )
    .unwrap();

    // Endpoint to endpoint (same /24, so this needs proxy ARP and forwarding).
    let server = tcp_echo(&e2, "10.88.0.3:7001".parse().unwrap());
    assert_eq!(
        tcp_roundtrip(&e1, "10.88.0.3:7001".parse().unwrap()).unwrap(),
        "hello"
    );
    server.join().unwrap();
    // Host to endpoint, and endpoint to the host's gateway address.
    let server = tcp_echo(&e1, "10.88.0.2:7002".parse().unwrap());
    assert_eq!(
        tcp_roundtrip(&h, "10.88.0.2:7002".parse().unwrap()).unwrap(),
        "hello"
    );
    server.join().unwrap();
    let server = tcp_echo(&h, "10.88.0.1:7003".parse().unwrap());
    assert_eq!(
        tcp_roundtrip(&e2, "10.88.0.1:7003".parse().unwrap()).unwrap(),
        "hello"
    );
    server.join().unwrap();
    // IPv6, endpoint to endpoint through the host's /128 routes.
    let to = "[fd00:88::3]:7004".parse().unwrap();
    assert_eq!(udp_oneway(&e1, &e2, to).unwrap(), b"ping");

    // Deleting the host route cuts the path; deleting twice says "not found".
    let p2 = index(&mut host, "bhp2");
    let route = Route::host(ip("10.88.0.3"), p2);
    host.execute(Batch::new().delete_route(&route)).unwrap();
    assert!(tcp_roundtrip(&e1, "10.88.0.3:7005".parse().unwrap()).is_err());
    let err = host.execute(Batch::new().delete_route(&route)).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string().starts_with("delete route 10.88.0.3/32 dev"),
        "{err}"
    );

    let fwd = sysctl::read(Some(h.path()), "net.ipv4.ip_forward").unwrap();
    assert_eq!(fwd, "1");
    assert_eq!(
        sysctl::read(None, "net.ipv4.ip_forward").unwrap(),
        own_forward
    );
}

#[test]
fn link_attributes_errors_and_deletion() {
    if !require_root() {
        return;
    }
    let h = ns("link");
    let mut r = rtnl(&h);
    let veth = VethSpec {
        name: "bhv0",
        peer_name: "bhv1",
        mac: Some([0x02, 0, 0, 0, 0, 0x10]),
        ..Default::default()
    };
    r.execute(
        Batch::new()
            .create_bridge("bhb0")
            .create_bridge("bhd0")
            .create_veth(&veth)
            .unwrap(),
    )
    .unwrap();
    let br = index(&mut r, "bhb0");
    r.execute(
        Batch::new()
            .set_master("bhv0", Some(br))
            .set_mtu("bhv0", 1300)
            .set_group("bhv0", 7)
            .set_up("bhv0"),
    )
    .unwrap();
    let l = r.link("bhv0").unwrap().unwrap();
    assert_eq!((l.master, l.mtu, l.group, l.up), (Some(br), 1300, 7, true));
    assert_eq!((l.kind.as_deref(), l.mac), (Some("veth"), veth.mac));
    assert_eq!(
        r.link("bhb0").unwrap().unwrap().kind.as_deref(),
        Some("bridge")
    );
    // Kernels without CONFIG_DUMMY say so, with the kernel's own words.
    match r.execute(Batch::new().create_dummy("bhdummy0")) {
        Ok(()) => assert_eq!(
            r.link("bhdummy0").unwrap().unwrap().kind.as_deref(),
            Some("dummy")
        ),
        Err(e) => assert_eq!(
            e.to_string(),
            "create dummy bhdummy0: Operation not supported (Unknown device type)"
        ),
    }
    let mut names: Vec<_> = r
        .links("bhv")
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    names.sort();
    assert_eq!(names, ["bhv0", "bhv1"]);
    assert_eq!(r.link("nope0").unwrap(), None);

    r.execute(Batch::new().set_master("bhv0", None).set_down("bhv0"))
        .unwrap();
    let l = r.link("bhv0").unwrap().unwrap();
    assert_eq!((l.master, l.up), (None, false));

    // Errors name the operation and the object, then the kernel's reason.
    let err = r
        .execute(Batch::new().create_veth(&veth).unwrap())
        .unwrap_err();
    assert!(err.is_exists());
    assert!(
        err.to_string().starts_with("create veth bhv0: File exists"),
        "{err}"
    );
    // A failed request does not stop the rest of its batch.
    let err = r
        .execute(Batch::new().set_up("nope0").set_up("bhd0"))
        .unwrap_err();
    assert!(
        err.to_string().starts_with("set up nope0: No such device"),
        "{err}"
    );
    assert!(r.link("bhd0").unwrap().unwrap().up);

    // A big batch is one datagram out and one ack per request back.
    let d = index(&mut r, "bhd0");
    let mut many = Batch::new();
    for i in 0..300u32 {
        many.add_route(&Route::host(
            IpAddr::from((0xc633_6400 + i).to_be_bytes()),
            d,
        ));
    }
    let first = format!("198.51.100.0/32 dev {d}");
    assert_eq!(many.ops().next(), Some(("add route", first.as_str())));
    r.execute(&many).unwrap();
    let routes = ip_cmd(&h, &["route", "show", "dev", "bhd0"]);
    assert_eq!(routes.lines().count(), 300, "{routes}");

    // Deleting one end of a veth removes both; a second delete is "not found".
    r.execute(Batch::new().delete_link("bhv0")).unwrap();
    assert!(r.links("bhv").unwrap().is_empty());
    let err = r.execute(Batch::new().delete_link("bhv0")).unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let a = ip("192.0.2.1");
    r.execute(Batch::new().add_address(d, a, 24)).unwrap();
    assert!(ip_cmd(&h, &["addr", "show", "bhd0"]).contains("192.0.2.1/24"));
    r.execute(Batch::new().delete_address(d, a, 24)).unwrap();
    assert!(!ip_cmd(&h, &["addr", "show", "bhd0"]).contains("192.0.2.1"));
    let err = r
        .execute(Batch::new().delete_address(d, a, 24))
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn vxlan_overlay_with_static_fdb_and_neighbours() {
    if !require_root() {
        return;
    }
    let (u1, u2) = (ns("vx-host1"), ns("vx-host2"));
    let (mut r1, mut r2) = (rtnl(&u1), rtnl(&u2));
    let underlay = VethSpec {
        name: "ul0",
        peer_name: "ul0",
        peer_netns: Some(u2.path()),
        ..Default::default()
    };
    r1.execute(Batch::new().create_veth(&underlay).unwrap())
        .unwrap();
    let mut macs = Vec::new();
    for (r, me, other, overlay) in [
        (&mut r1, "192.168.77.1", "192.168.77.2", "10.99.0.1"),
        (&mut r2, "192.168.77.2", "192.168.77.1", "10.99.0.2"),
    ] {
        let ul = index(r, "ul0");
        r.execute(Batch::new().set_up("ul0").add_address(ul, ip(me), 24))
            .unwrap();
        let spec = VxlanSpec {
            name: "bhn0",
            vni: 4242,
            local: Some(ip(me)),
            underlay: Some(ul),
            port: 4789,
            learning: false,
            proxy: false,
            mtu: Some(1400),
        };
        r.execute(Batch::new().create_vxlan(&spec)).unwrap();
        let vx = index(r, "bhn0");
        let flood = Neighbour::Fdb {
            dev: vx,
            mac: [0; 6],
            dst: ip(other),
        };
        r.execute(
            Batch::new()
                .add_neighbour(&flood)
                .add_address(vx, ip(overlay), 24)
                .set_up("bhn0"),
        )
        .unwrap();
        macs.push(r.link("bhn0").unwrap().unwrap().mac.unwrap());
    }
    let details = ip_cmd(&u1, &["-d", "link", "show", "bhn0"]);
    assert!(details.contains("vxlan id 4242"), "{details}");
    assert!(
        details.contains("dstport 4789") && details.contains("nolearning"),
        "{details}"
    );

    // A static ARP entry for the far end, then real traffic over the tunnel.
    let vx1 = index(&mut r1, "bhn0");
    let neigh = Neighbour::Ip {
        dev: vx1,
        ip: ip("10.99.0.2"),
        mac: macs[1],
    };
    r1.execute(Batch::new().add_neighbour(&neigh)).unwrap();
    assert!(ip_cmd(&u1, &["neigh", "show", "dev", "bhn0"]).contains("PERMANENT"));
    // The dump a restarted daemon diffs against: exactly what was added.
    let fdb = Neighbour::Fdb {
        dev: vx1,
        mac: macs[1],
        dst: ip("192.168.77.2"),
    };
    r1.execute(Batch::new().add_neighbour(&fdb)).unwrap();
    let listed = r1.permanent_neighbours(vx1).unwrap();
    for want in [neigh, fdb] {
        assert!(listed.contains(&want), "{want:?} in {listed:?}");
    }
    assert_eq!(listed.len(), 3, "+ the flood entry: {listed:?}");
    let ul1 = index(&mut r1, "ul0");
    assert!(r1.permanent_neighbours(ul1).unwrap().is_empty());
    let to = "10.99.0.2:7100".parse().unwrap();
    assert_eq!(udp_oneway(&u1, &u2, to).unwrap(), b"ping");
    let server = tcp_echo(&u2, "10.99.0.2:7101".parse().unwrap());
    assert_eq!(
        tcp_roundtrip(&u1, "10.99.0.2:7101".parse().unwrap()).unwrap(),
        "hello"
    );
    server.join().unwrap();
    r1.execute(Batch::new().delete_neighbour(&neigh)).unwrap();
    assert!(!ip_cmd(&u1, &["neigh", "show", "dev", "bhn0"]).contains("PERMANENT"));
}

#[test]
fn macvlans_in_bridge_mode_reach_each_other() {
    if !require_root() {
        return;
    }
    let (h, e1, e2) = (ns("mv-host"), ns("mv-ep1"), ns("mv-ep2"));
    let mut host = rtnl(&h);
    let uplink = VethSpec {
        name: "bhup0",
        peer_name: "bhup1",
        ..Default::default()
    };
    host.execute(
        Batch::new()
            .create_veth(&uplink)
            .unwrap()
            .set_up("bhup1")
            .set_up("bhup0"),
    )
    .unwrap();
    let parent = index(&mut host, "bhup0");
    for (ep, addr) in [(&e1, "10.77.0.1"), (&e2, "10.77.0.2")] {
        let spec = MacvlanSpec {
            name: "mv0",
            parent,
            mode: MacvlanMode::Bridge,
            netns: Some(ep.path()),
            ..Default::default()
        };
        host.execute(Batch::new().create_macvlan(&spec).unwrap())
            .unwrap();
        let mut r = rtnl(ep);
        let l = r
            .link("mv0")
            .unwrap()
            .expect("macvlan made in the endpoint netns");
        assert_eq!(l.kind.as_deref(), Some("macvlan"));
        r.execute(
            Batch::new()
                .add_address(l.index, ip(addr), 24)
                .set_up("mv0"),
        )
        .unwrap();
    }
    assert!(host.links("mv").unwrap().is_empty());
    let server = tcp_echo(&e2, "10.77.0.2:7200".parse().unwrap());
    assert_eq!(
        tcp_roundtrip(&e1, "10.77.0.2:7200".parse().unwrap()).unwrap(),
        "hello"
    );
    server.join().unwrap();
}

#[test]
fn persistent_tap_lives_in_its_namespace() {
    if !require_root() {
        return;
    }
    let h = ns("tap");
    let mut r = rtnl(&h);
    let spec = TapSpec {
        name: "bhp0tap",
        owner: Some(0),
        ..Default::default()
    };
    r.create_tap(&spec).unwrap();
    r.execute(
        Batch::new()
            .create_bridge("bhb0")
            .set_mtu("bhp0tap", 1450)
            .set_up("bhp0tap"),
    )
    .unwrap();
    let br = index(&mut r, "bhb0");
    r.execute(Batch::new().set_master("bhp0tap", Some(br)))
        .unwrap();
    let l = r
        .link("bhp0tap")
        .unwrap()
        .expect("tap outlives its descriptor");
    assert_eq!(
        (l.kind.as_deref(), l.mtu, l.master),
        (Some("tun"), 1450, Some(br))
    );
    assert!(ip_cmd(&h, &["-d", "link", "show", "bhp0tap"]).contains("tap"));
    let err = r.create_tap(&spec).unwrap_err();
    assert!(err.to_string().starts_with("create tap bhp0tap:"), "{err}");
    r.execute(Batch::new().delete_link("bhp0tap")).unwrap();
    assert_eq!(r.link("bhp0tap").unwrap(), None);
    assert!(Rtnl::current().unwrap().link("bhp0tap").unwrap().is_none());
}

#[test]
fn sysctls_are_per_namespace() {
    if !require_root() {
        return;
    }
    let own = sysctl::read(None, "net.ipv4.conf.lo.route_localnet").unwrap();
    let e = ns("sysctl");
    let name = "net.ipv4.conf.lo.route_localnet";
    sysctl::write(Some(e.path()), name, "1").unwrap();
    assert_eq!(sysctl::read(Some(e.path()), name).unwrap(), "1");
    assert_eq!(
        sysctl::read(Some(e.path()), "net/ipv4/conf/lo/route_localnet").unwrap(),
        "1"
    );
    assert_eq!(sysctl::read(None, name).unwrap(), own);
    let err = sysctl::read(Some(e.path()), "net.ipv4.conf.nope0.forwarding").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("read sysctl net.ipv4.conf.nope0.forwarding:"),
        "{err}"
    );
    let err = sysctl::write(Some(e.path()), "net/../../kernel/hostname", "x").unwrap_err();
    assert!(
        matches!(err, sysctl::SysctlError::InvalidName { .. }),
        "{err}"
    );
}

/// A kept `/proc/sys/net` writes the namespace it was opened in, and keeps
/// doing so whichever namespace the caller and other namespaces are in.
#[test]
fn a_kept_sysctl_directory_stays_in_its_namespace() {
    if !require_root() {
        return;
    }
    let name = "net.ipv4.conf.lo.route_localnet";
    let own = sysctl::read(None, name).unwrap();
    let (a, b) = (ns("netdir-a"), ns("netdir-b"));
    let dir = sysctl::NetDir::open(Some(a.path())).unwrap();
    dir.write_all(&[(name, "1"), ("net/ipv4/ip_forward", "1")])
        .unwrap();
    assert_eq!(dir.read(name).unwrap(), "1");
    assert_eq!(sysctl::read(Some(a.path()), name).unwrap(), "1");
    assert_eq!(
        sysctl::read(Some(a.path()), "net.ipv4.ip_forward").unwrap(),
        "1"
    );
    // Neither another namespace nor the caller's own changed.
    assert_eq!(sysctl::read(Some(b.path()), name).unwrap(), "0");
    assert_eq!(sysctl::read(None, name).unwrap(), own);
    dir.write(name, "0").unwrap();
    assert_eq!(sysctl::read(Some(a.path()), name).unwrap(), "0");
    // Bad names are refused before any file is touched; a missing one is
    // named in the error.
    let err = dir.write("net/../../kernel/hostname", "x").unwrap_err();
    assert!(
        matches!(err, sysctl::SysctlError::InvalidName { .. }),
        "{err}"
    );
    let err = dir.read("net.ipv4.conf.nope0.forwarding").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("read sysctl net.ipv4.conf.nope0.forwarding:"),
        "{err}"
    );
}
