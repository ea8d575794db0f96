//! `bulkhead events` against the real daemon (spec §12, §9): a probe a
//! block rule drops shows up in `bulkhead events --output json` (one JSON
//! object per line) with endpoint, point, direction, rule id, protocol,
//! addresses and ports, `--endpoint` filters, `--follow` streams the next
//! drop as it happens, and a tenant's `nft flush ruleset` is undone within
//! a second and listed as `tamper` and `restore`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ip, Daemon};
use serde_json::Value;

fn events(d: &Daemon, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--output", "json", "events"];
    all.extend_from_slice(args);
    d.ok(&all)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l}: {e}")))
        .collect()
}

/// A TCP connection attempt from inside the pinned namespace `pin`.
fn probe(pin: &str, to: SocketAddr) -> bool {
    let path = PathBuf::from("/run/netns").join(pin);
    bulkhead_dataplane::netns::run_in(Some(&path), || {
        TcpStream::connect_timeout(&to, Duration::from_millis(300)).is_ok()
    })
    .expect("enter namespace")
}

/// `bulkhead events --output json` until one drop of `endpoint` is there,
/// probing `to` from `pin` again meanwhile (the daemon starts logging a new
/// namespace's drops within ~100 ms of its creation, see
/// `crates/engine/src/watch.rs`).
fn wait_drop(d: &Daemon, endpoint: &str, pin: &str, to: SocketAddr) -> Value {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        assert!(!probe(pin, to), "the block rule does not block");
        let found = events(d, &[])
            .into_iter()
            .find(|e| e["kind"] == "drop" && e["endpoint"] == endpoint);
        if let Some(e) = found {
            return e;
        }
        assert!(Instant::now() < until, "no drop event for {endpoint}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn drops_and_tampering_are_listed_by_bulkhead_events() {
    let Some(d) = Daemon::start() else { return };
    d.network("n", "nat", "10.234.0.0/24");
    let a = common::endpoint(&d, "n", "nsa", "a");
    let b = common::endpoint(&d, "n", "nsb", "b");
    let ip_of = |e: &Value| {
        let s = e["ip_address"].as_str().expect("ip_address").to_owned();
        s.split('/').next().unwrap_or_default().to_owned()
    };
    let (a_ip, b_ip) = (ip_of(&a), ip_of(&b));
    let id = d
        .ok(&[
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
            "23",
            "--priority",
            "100",
        ])
        .trim()
        .to_owned();
    let to: SocketAddr = format!("{b_ip}:23").parse().expect("address");
    let (pin_a, pin_b) = (format!("{}nsa", d.prefix), format!("{}nsb", d.prefix));
    let e = wait_drop(&d, "b", &pin_a, to);
    assert_eq!(e["point"], "host_firewall");
    assert_eq!(e["direction"], "in");
    assert_eq!(e["rule"], id.as_str());
    assert_eq!(e["protocol"], "tcp");
    assert_eq!(
        (e["src"].as_str(), e["dst"].as_str()),
        (Some(a_ip.as_str()), Some(b_ip.as_str()))
    );
    assert_eq!(e["dst_port"], 23);
    assert!(e["src_port"].as_u64().is_some_and(|p| p > 0), "{e}");
    assert!(events(&d, &["--endpoint", "a"])
        .iter()
        .all(|e| e["endpoint"] != "b"));
    let table = d.ok(&["events", "--endpoint", "b"]);
    assert!(
        table.contains(&format!("{b_ip}:23")) && table.contains(&id),
        "{table}"
    );
    assert!(d
        .fails(&["events", "--endpoint", "nosuch"])
        .contains("nosuch"));

    // --follow prints the next drop as it happens.
    let mut follow = Command::new(common::cli_bin())
        .arg("--socket")
        .arg(d.socket())
        .args(["--output", "json", "events", "--follow", "--endpoint", "b"])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn bulkhead events --follow");
    let stdout = follow.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The existing drop first, then a new one (new source port).
    let first: Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(3)).expect("first line"))
            .expect("json");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!probe(&pin_a, to));
    let next = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(3))
            .expect("--follow printed no new drop");
        let v: Value = serde_json::from_str(&line).expect("json");
        if v["seq"].as_u64() > first["seq"].as_u64() && v["kind"] == "drop" {
            break v;
        }
    };
    assert_eq!(next["rule"], id.as_str());
    let _ = follow.kill();
    let _ = follow.wait();

    // Tamper: the tenant flushes its firewall; bulkheadd puts it back.
    let out = Command::new("ip")
        .args(["netns", "exec", &pin_b, "nft", "flush", "ruleset"])
        .output()
        .expect("nft");
    assert!(out.status.success());
    let start = Instant::now();
    while ip(&["netns", "exec", &pin_b, "nft", "list", "tables"])
        .trim()
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "not restored within 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!probe(&pin_a, to), "probe passes after the restore");
    let all = events(&d, &["--endpoint", "b"]);
    assert!(
        all.iter()
            .any(|e| e["kind"] == "tamper" && e["namespace"] == "nsb"),
        "{all:?}"
    );
    assert!(all.iter().any(|e| e["kind"] == "restore"), "{all:?}");
}
