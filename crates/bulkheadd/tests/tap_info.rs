//! A vm endpoint's TAP as `bulkhead endpoint inspect` shows it (JSON and
//! table) against a real bulkheadd: its name and the options it was made
//! with, checked against what the kernel says of the device in the host
//! namespace (owner, group, multi-queue), and the same after a restart
//! (from the store). A process endpoint shows no TAP.

mod common;

use std::process::Command;

use common::Daemon;

/// `/sys/class/net/<dev>/<attr>` of the daemon's host namespace
/// (`ip netns exec` mounts that namespace's sysfs).
fn sys(d: &Daemon, dev: &str, attr: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &d.host, "cat"])
        .arg(format!("/sys/class/net/{dev}/{attr}"))
        .output()
        .expect("run ip netns exec");
    assert!(out.status.success(), "{dev}/{attr}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The TAP fields of `endpoint inspect NAME`, JSON and table.
fn shown(d: &Daemon, name: &str) -> (serde_json::Value, String) {
    let j = d.json(&["endpoint", "inspect", name]);
    let table = d.ok(&["endpoint", "inspect", name]);
    let line = table
        .lines()
        .find(|l| l.starts_with("tap "))
        .unwrap_or_else(|| panic!("no tap line in\n{table}"))
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ");
    (j, line)
}

#[test]
fn endpoint_inspect_shows_the_tap_and_its_options() {
    let Some(mut d) = Daemon::start() else { return };
    d.network("vn", "nat", "10.93.0.0/24");
    d.ok(&["namespace", "create", "vm1", "--isolation", "vm"]);
    d.ok(&["namespace", "create", "vm2", "--isolation", "vm"]);
    d.ok(&["namespace", "create", "pod"]);
    let create = |ep: &str, ns: &str, extra: &[&str]| {
        let base = [
            "endpoint",
            "create",
            ep,
            "--network",
            "vn",
            "--namespace",
            ns,
        ];
        d.json(&[&base[..], extra].concat())
    };
    let g1 = create("g1", "vm1", &["--tap-owner", "1234", "--tap-queues", "4"]);
    let g2 = create("g2", "vm2", &["--tap-group", "4321"]);
    create("p", "pod", &[]);
    let tap1 = g1["switch_port"].as_str().expect("port").to_owned();
    let tap2 = g2["switch_port"].as_str().expect("port").to_owned();
    // What the kernel made: owner/group (-1: none), IFF_MULTI_QUEUE.
    let multi_queue = |dev: &str| {
        let flags = sys(&d, dev, "tun_flags");
        let v = u32::from_str_radix(flags.trim_start_matches("0x"), 16).expect("hex flags");
        v & 0x100 != 0
    };
    assert_eq!(sys(&d, &tap1, "owner"), "1234");
    assert_eq!(sys(&d, &tap1, "group"), "-1");
    assert!(multi_queue(&tap1), "{tap1} is multi-queue");
    assert_eq!(sys(&d, &tap2, "group"), "4321");
    assert!(!multi_queue(&tap2), "{tap2} is single-queue");
    for round in ["created", "after a restart"] {
        let (j, line) = shown(&d, "g1");
        assert_eq!(
            j["tap"],
            serde_json::json!({"name": tap1, "owner": 1234, "group": null, "queues": 4}),
            "{round}"
        );
        assert_eq!(
            line,
            format!("{tap1} owner=1234 group=- queues=4"),
            "{round}"
        );
        let (j, line) = shown(&d, "g2");
        assert_eq!(
            j["tap"],
            serde_json::json!({"name": tap2, "owner": null, "group": 4321, "queues": 1}),
            "{round}"
        );
        assert_eq!(
            line,
            format!("{tap2} owner=- group=4321 queues=1"),
            "{round}"
        );
        let (j, line) = shown(&d, "p");
        assert!(j["tap"].is_null(), "a process endpoint has no TAP: {j}");
        assert_eq!(line, "-");
        d.restart();
    }
}
