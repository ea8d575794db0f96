//! Restart reconcile: with the daemon stopped, a namespace pin and a switch
//! port are deleted by hand and a stray `bhp*` veth is added; on restart
//! bulkheadd recreates what its store owns (and the endpoint carries packets
//! again) and removes what it does not own.

mod common;

use common::{endpoint, ip, Daemon};

#[test]
fn restart_repairs_the_kernel_from_the_store() {
    let Some(mut d) = Daemon::start() else { return };
    d.network("rc", "nat", "10.102.0.0/24");
    let a = endpoint(&d, "rc", "a", "a");
    let b = endpoint(&d, "rc", "b", "b");
    d.ok(&[
        "acl",
        "add",
        "b",
        "--direction",
        "in",
        "--action",
        "block",
        "--protocol",
        "tcp",
        "--local-ports",
        "9",
        "--id",
        "keep",
    ]);
    let ip_of = |e: &serde_json::Value| {
        e["ip_address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let (a_ip, b_ip) = (ip_of(&a), ip_of(&b));
    assert!(d.pings("a", &b_ip));
    let before = d.assert_consistent();

    d.stop();
    // Break the kernel behind the daemon's back.
    ip(&["netns", "del", &format!("{}a", d.prefix)]);
    ip(&[
        "-n",
        &d.host,
        "link",
        "del",
        b["switch_port"].as_str().unwrap(),
    ]);
    ip(&[
        "-n",
        &d.host,
        "link",
        "add",
        "bhpdeadbeef00",
        "type",
        "veth",
        "peer",
        "name",
        "bhtjunk0",
    ]);
    assert!(d.host_links("bhp").contains(&"bhpdeadbeef00".to_owned()));
    d.spawn();

    let after = d.assert_consistent();
    assert_eq!(after, before, "records unchanged by the repair");
    assert!(
        !d.host_links("bhp").contains(&"bhpdeadbeef00".to_owned()),
        "stray removed"
    );
    assert!(d.host_links("bhtjunk").is_empty(), "its peer went with it");
    assert!(
        d.pins().contains(&format!("{}a", d.prefix)),
        "pin recreated"
    );
    let addr = d.ok(&["exec", "a", "--", "ip", "-o", "addr", "show"]);
    assert!(
        addr.contains(&format!("{a_ip}/24")),
        "a's address is back: {addr}"
    );
    assert!(d.pings("a", &b_ip), "a -> b after the repair");
    assert!(d.pings("b", &a_ip), "b -> a after the repair");
    assert_eq!(d.json(&["acl", "ls", "b"])[0]["id"], "keep");
    let t = d.json(&[
        "trace",
        "--from",
        "a",
        "--to",
        "b",
        "--protocol",
        "tcp",
        "--port",
        "9",
    ]);
    assert_eq!(t["verdict"], "block", "{t}");

    // A restart with nothing broken changes nothing.
    d.restart();
    assert_eq!(d.assert_consistent(), before);
    assert!(d.pings("a", &b_ip));
}

#[test]
fn unowned_pins_with_the_prefix_are_removed() {
    let Some(mut d) = Daemon::start() else { return };
    d.ok(&["namespace", "create", "kept"]);
    d.stop();
    ip(&["netns", "add", &format!("{}orphan", d.prefix)]);
    d.spawn();
    assert_eq!(d.pins(), [format!("{}kept", d.prefix)]);
    d.assert_consistent();
}

/// What a crash between an endpoint delete and its background port removal
/// leaves: a retired switch port (down, in the retired interface group, no
/// record) whose veth side still holds its interface name in a namespace.
/// Here that name is the one a recorded endpoint whose port is missing needs
/// there: on restart the leftover goes first, then the port is rebuilt.
#[test]
fn a_retired_port_left_by_a_crash_is_removed_before_ports_are_rebuilt() {
    let Some(mut d) = Daemon::start() else { return };
    d.network("rt", "nat", "10.103.0.0/24");
    let a = endpoint(&d, "rt", "a", "a");
    let b = endpoint(&d, "rt", "b", "b");
    let b_ip = b["ip_address"].as_str().unwrap().split('/').next().unwrap();
    let before = d.assert_consistent();
    d.kill9();
    ip(&[
        "-n",
        &d.host,
        "link",
        "del",
        a["switch_port"].as_str().unwrap(),
    ]);
    let group = bulkhead_dataplane::kernel::RETIRED_GROUP.to_string();
    ip(&[
        "-n",
        &d.host,
        "link",
        "add",
        "bhpdead0000002",
        "group",
        &group,
        "type",
        "veth",
        "peer",
        "name",
        a["ifname"].as_str().unwrap_or("eth0"),
        "netns",
        &format!("{}a", d.prefix),
    ]);
    d.spawn();
    assert_eq!(d.assert_consistent(), before, "records unchanged");
    assert!(!d.host_links("bhp").contains(&"bhpdead0000002".to_owned()));
    assert!(d.pings("a", b_ip), "a's port rebuilt and working");
}
