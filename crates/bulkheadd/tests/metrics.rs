//! Metrics and the read-only listeners against the real daemon (spec §12):
//! values move as the packets did (pings counted as allowed at the
//! receiver's host firewall, blocked connection attempts counted exactly at
//! the blocking rule, sampled drop events, API routes, store commits);
//! `promtool check metrics` (Prometheus's own parser and linter) accepts
//! the whole exposition. The listeners' guarantees are in `listeners.rs`.

mod common;
mod web_kit;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;
use web_kit::{connects, http, sample};

const METRICS: &str = "127.0.0.1:9469";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// Network `n`, endpoints `a` (namespace nsa) and `b` (nsb), and a rule
/// on b blocking TCP port 23 in; (a's address, b's address, rule id).
fn world(d: &Daemon) -> (String, String, String) {
    d.network("n", "nat", "10.238.0.0/24");
    let ip_of = |e: serde_json::Value| {
        let s = e["ip_address"].as_str().expect("ip_address").to_owned();
        s.split('/').next().unwrap_or_default().to_owned()
    };
    let a = ip_of(common::endpoint(d, "n", "nsa", "a"));
    let b = ip_of(common::endpoint(d, "n", "nsb", "b"));
    let args = ["acl", "add", "b", "--direction", "in", "--action", "block"];
    let rule = [
        "--protocol",
        "tcp",
        "--local-ports",
        "23",
        "--priority",
        "100",
    ];
    let id = d.ok(&[&args[..], &rule[..]].concat()).trim().to_owned();
    (a, b, id)
}

fn ping(d: &Daemon, ns: &str, to: &str) -> bool {
    let pin = format!("{}{ns}", d.prefix);
    Command::new("ip")
        .args(["netns", "exec", &pin, "ping", "-c1", "-W1", to])
        .stdout(Stdio::null())
        .status()
        .expect("ping")
        .success()
}

/// The labels of rule `rule` at b's host firewall, inbound.
fn b_in(rule: &str) -> [(&str, &str); 4] {
    [
        ("endpoint", "b"),
        ("point", "host_firewall"),
        ("direction", "in"),
        ("rule", rule),
    ]
}

fn scrape(d: &Daemon) -> String {
    let a = http(d, "GET", addr(METRICS), "/metrics", &[]);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.head.contains("text/plain; version=0.0.4"), "{}", a.head);
    a.body
}

/// A scrape once a drop by rule `id` has been counted: drop events are
/// sampled by the kernel and read by the watcher, so they come a little
/// after the packet. `again` runs before each scrape: a caller whose drop
/// may have come before the watcher opened the namespace's log socket
/// (`bulkhead_engine::watch`: the watcher's thread must run first) drops
/// another packet there.
fn scrape_after_drop(d: &Daemon, id: &str, again: impl Fn()) -> String {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        again();
        let now = scrape(d);
        if sample(&now, "bulkhead_drop_events_total", &[("rule", id)]) >= 1.0 {
            return now;
        }
        assert!(Instant::now() < until, "no drop event counted:\n{now}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_move_as_the_packets_did() {
    let Some(d) = Daemon::start_with(&["--metrics-address", METRICS]) else {
        return;
    };
    let (a_ip, b_ip, id) = world(&d);
    assert!(d.pings("nsa", &b_ip), "a cannot reach b");
    let allow_common = b_in("current:in:allow-common");
    let before = scrape(&d);
    const PINGS: u32 = 5;
    const SYNS: u32 = 3;
    for _ in 0..PINGS {
        assert!(ping(&d, "nsa", &b_ip), "ping a -> b");
    }
    let to: SocketAddr = format!("{b_ip}:23").parse().expect("address");
    for _ in 0..SYNS {
        assert!(!connects(&d, "nsa", to), "the block rule does not block");
    }
    // Five pings and three connects take well over the watcher's first
    // sync: no packet is sent again, so the counts below stay exact.
    let after = scrape_after_drop(&d, &id, || {});
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    // Each `ping -c1` is a new flow: its echo request is allowed by the
    // profile's rule at b's host firewall; other traffic (IPv6 link-local
    // chatter) may add a little, never take away.
    let pings = moved("bulkhead_acl_rule_packets_total", &allow_common);
    assert!(
        (f64::from(PINGS)..=f64::from(PINGS) + 3.0).contains(&pings),
        "allowed pings: {pings}"
    );
    assert!(moved("bulkhead_acl_rule_bytes_total", &allow_common) >= f64::from(PINGS * 84));
    // The replies go out of b as established traffic, counted by `stateful`.
    let replies = [
        ("endpoint", "b"),
        ("direction", "out"),
        ("rule", "stateful"),
    ];
    assert!(moved("bulkhead_acl_rule_packets_total", &replies) >= f64::from(PINGS));
    // Nothing else goes to port 23: exactly one SYN per attempt.
    let blocked = moved("bulkhead_acl_rule_packets_total", &b_in(&id));
    assert_eq!(
        blocked,
        f64::from(SYNS),
        "packets counted by the block rule"
    );
    let b_dropped = [
        ("endpoint", "b"),
        ("point", "host_firewall"),
        ("direction", "in"),
        ("verdict", "dropped"),
    ];
    assert_eq!(
        moved("bulkhead_endpoint_packets_total", &b_dropped),
        f64::from(SYNS)
    );
    let a_sent = [
        ("endpoint", "a"),
        ("direction", "out"),
        ("verdict", "allowed"),
    ];
    assert!(moved("bulkhead_endpoint_packets_total", &a_sent) >= f64::from(PINGS + SYNS));
    assert!(sample(&after, "bulkhead_events_total", &[("kind", "drop")]) >= 1.0);
    // Objects, API routes and store commits of the setup.
    assert_eq!(
        sample(&after, "bulkhead_objects", &[("kind", "endpoint")]),
        2.0
    );
    assert_eq!(
        sample(&after, "bulkhead_objects", &[("kind", "namespace")]),
        2.0
    );
    assert_eq!(
        sample(&after, "bulkhead_networks", &[("driver", "nat")]),
        1.0
    );
    let created = [("route", "POST /v1/endpoints"), ("outcome", "ok")];
    assert_eq!(sample(&after, "bulkhead_api_requests_total", &created), 2.0);
    assert!(sample(&after, "bulkhead_store_commit_duration_seconds_count", &[]) >= 5.0);
    assert!(
        sample(
            &after,
            "bulkhead_reconcile_runs_total",
            &[("outcome", "ok")]
        ) >= 1.0
    );
    let info = [("endpoint", "a"), ("address", a_ip.as_str())];
    assert_eq!(sample(&after, "bulkhead_endpoint_info", &info), 1.0);

    // The same exposition on the API socket (curl speaks HTTP over it).
    let out = Command::new("curl")
        .args(["-sS", "--unix-socket"])
        .arg(d.socket())
        .arg("http://bulkhead/metrics")
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        sample(&text, "bulkhead_acl_rule_packets_total", &allow_common) >= pings,
        "{text}"
    );
}

#[test]
fn promtool_accepts_the_whole_exposition() {
    let Some(d) = Daemon::start_with(&["--metrics-address", METRICS]) else {
        return;
    };
    let (_, b_ip, id) = world(&d);
    assert!(d.pings("nsa", &b_ip));
    let to: SocketAddr = format!("{b_ip}:23").parse().expect("address");
    assert!(!connects(&d, "nsa", to));
    let _ = d.fails(&["endpoint", "inspect", "nosuch"]);
    let text = scrape_after_drop(&d, &id, || {
        let _ = connects(&d, "nsa", to);
    });
    for family in [
        "bulkhead_api_requests_total",
        "bulkhead_api_request_duration_seconds",
        "bulkhead_store_commit_duration_seconds",
        "bulkhead_objects",
        "bulkhead_endpoint_packets_total",
        "bulkhead_endpoint_bytes_total",
        "bulkhead_acl_rule_packets_total",
        "bulkhead_drop_events_total",
        "bulkhead_tamper_events_total",
        "bulkhead_reconcile_runs_total",
        "bulkhead_reconcile_repairs_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    let mut promtool = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(p) => p,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool: {e} (CI installs prometheus)"
            );
            eprintln!("!!!!! SKIPPED: promtool is not installed !!!!!");
            return;
        }
    };
    use std::io::Write;
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The check can fail: a counter family named without `_total` (as the
    // OpenMetrics format names it) is refused.
    let broken = text
        .replacen(
            "# HELP bulkhead_api_requests_total ",
            "# HELP bulkhead_api_requests ",
            1,
        )
        .replacen(
            "# TYPE bulkhead_api_requests_total ",
            "# TYPE bulkhead_api_requests ",
            1,
        );
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("promtool");
    p.stdin
        .take()
        .expect("stdin")
        .write_all(broken.as_bytes())
        .expect("write");
    assert!(
        !p.wait().expect("promtool").success(),
        "promtool accepts anything"
    );
}
