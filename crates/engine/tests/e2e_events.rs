//! End-to-end test of drop events (spec §12): real packets blocked by a
//! process endpoint's host firewall reach the events ring through the
//! kernel's NFLOG, attributed to the endpoint, point, direction and the
//! deciding rule, with protocol, addresses and ports; a flood of blocked
//! packets is thinned by the kernel's rate limit (the event count stays
//! bounded) and the engine stays responsive. Needs root (loud skip
//! otherwise; fails under `CI=true`).

mod common;

use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns;
use bulkhead_engine::events::{Event, EventKind};
use bulkhead_engine::{Engine, WatchOptions};
use bulkhead_model::AclRuleSpec;
use bulkhead_policy::compile::{LOG_BURST, LOG_RATE};
use common::*;

/// The watcher on this test's host namespace.
fn watch_options(h: &Harness) -> WatchOptions {
    WatchOptions {
        host: Some(h.host().to_owned()),
        ..WatchOptions::default()
    }
}

/// Waits up to 3 s for an event after `after` that `want` accepts.
fn wait_event(engine: &Engine, after: u64, want: impl Fn(&Event) -> bool) -> Option<Event> {
    let until = Instant::now() + Duration::from_secs(3);
    let mut cursor = after;
    while Instant::now() < until {
        let got = engine
            .events()
            .wait(cursor, Duration::from_millis(200), |_| true);
        if let Some(e) = got.iter().find(|e| want(e)) {
            return Some(e.clone());
        }
        cursor = got.last().map_or(cursor, |e| e.seq);
    }
    None
}

#[test]
fn a_blocked_probe_is_listed_with_its_endpoint_rule_and_headers() {
    let Some(h) = Harness::new("evd") else {
        return;
    };
    h.nat_network("n", "10.232.0.0/24", None);
    let a = h.endpoint("a", "n", &[], None);
    let b = h.endpoint("b", "n", &[], None);
    let block_in = h.acl(&b, rule("block", "in", "tcp", Some("23"), None, 100));
    let block_out = h.acl(
        &a,
        AclRuleSpec {
            action: "block".into(),
            direction: "out".into(),
            protocol: Some("udp".into()),
            remote_ports: Some("5353".into()),
            priority: Some("100".into()),
            ..Default::default()
        },
    );
    let _watcher = h.engine.watch(watch_options(&h)).expect("watch");

    // Inbound: b's firewall drops a's TCP SYN to port 23.
    let before = h.engine.events().last_seq();
    assert!(tcp_reaches(&a.ns, &b.ns, 23, b.addr(23)).is_none());
    let e = wait_event(&h.engine, before, |e| {
        e.kind == EventKind::Drop && e.endpoint.as_deref() == Some("b")
    })
    .expect("no drop event for the blocked inbound probe");
    assert_eq!(e.namespace.as_deref(), Some("b"));
    assert_eq!(e.point.as_deref(), Some("host_firewall"));
    assert_eq!(e.direction.as_deref(), Some("in"));
    assert_eq!(e.rule.as_deref(), Some(block_in.as_str()));
    assert_eq!(e.protocol, Some(6));
    assert_eq!(
        (e.src, e.dst),
        (Some(IpAddr::V4(a.ip)), Some(IpAddr::V4(b.ip)))
    );
    assert_eq!(e.dst_port, Some(23));
    assert!(e.src_port.is_some_and(|p| p != 0));

    // Outbound: a's firewall drops its own UDP to port 5353.
    let before = h.engine.events().last_seq();
    assert!(!udp_arrives(&a.ns, None, &b.ns, b.addr(5353)));
    let e = wait_event(&h.engine, before, |e| {
        e.kind == EventKind::Drop && e.endpoint.as_deref() == Some("a")
    })
    .expect("no drop event for the blocked outbound probe");
    assert_eq!(
        (e.point.as_deref(), e.direction.as_deref()),
        (Some("host_firewall"), Some("out"))
    );
    assert_eq!(e.rule.as_deref(), Some(block_out.as_str()));
    assert_eq!((e.protocol, e.dst_port), (Some(17), Some(5353)));
    assert_eq!(
        (e.src, e.dst),
        (Some(IpAddr::V4(a.ip)), Some(IpAddr::V4(b.ip)))
    );

    // An allowed probe makes no drop event.
    let before = h.engine.events().last_seq();
    assert!(tcp_reaches(&a.ns, &b.ns, 80, b.addr(80)).is_some());
    std::thread::sleep(Duration::from_millis(300));
    assert!(h
        .engine
        .events()
        .since(before, |e| e.kind == EventKind::Drop)
        .is_empty());
}

/// Ids of this process's threads named `name`.
fn tids(name: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    // Threads come and go while we look (other tests): skip what vanished.
    dir.filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .map(|t| t.file_name().to_string_lossy().into_owned())
        .collect()
}

/// CPU time (user + system, clock ticks) of this process's thread `tid`.
fn thread_ticks(tid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

#[test]
fn a_flood_of_blocked_packets_is_rate_limited_in_the_kernel() {
    let Some(h) = Harness::new("evf") else {
        return;
    };
    h.nat_network("n", "10.233.0.0/24", None);
    let a = h.endpoint("a", "n", &[], None);
    let b = h.endpoint("b", "n", &[], None);
    h.acl(&b, rule("block", "in", "udp", Some("9"), None, 100));
    let others = tids("bulkhead-watch");
    let _watcher = h.engine.watch(watch_options(&h)).expect("watch");
    // Ours is the watcher thread that was not there before (the other test
    // of this file may run one too).
    // (a thread names itself once running, so look for a little while)
    let until = Instant::now() + Duration::from_secs(2);
    let tid = loop {
        if let Some(t) = tids("bulkhead-watch")
            .into_iter()
            .find(|t| !others.contains(t))
        {
            break t;
        }
        assert!(Instant::now() < until, "no watcher thread");
        std::thread::sleep(Duration::from_millis(10));
    };
    let before = h.engine.events().last_seq();
    let ticks_before = thread_ticks(&tid);

    // ~100k packets a second for 2 s, from a thread in a's namespace.
    let secs = 2.0;
    let to = b.addr(9);
    let ns = a.ns.clone();
    let flood = std::thread::spawn(move || {
        netns::run_in(Some(&ns), || {
            let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
            s.connect(to).expect("connect");
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed().as_secs_f64() < secs {
                // Pace to 100 kpps: send what is due, then yield.
                let due = (start.elapsed().as_secs_f64() * 100_000.0) as u64;
                while sent < due {
                    let _ = s.send(b"flood");
                    sent += 1;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            (sent, start.elapsed())
        })
        .expect("enter a")
    });
    // The engine answers while the flood runs.
    let mut slowest = Duration::ZERO;
    while !flood.is_finished() {
        let t = Instant::now();
        let _ = h.engine.endpoints();
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (sent, took) = flood.join().expect("flood thread");
    std::thread::sleep(Duration::from_millis(300));
    let ticks = thread_ticks(&tid) - ticks_before;
    let drops = h.engine.events().since(before, |e| {
        e.kind == EventKind::Drop && e.endpoint.as_deref() == Some("b")
    });
    let secs = took.as_secs_f64();
    let bound = u64::from(LOG_BURST) + (f64::from(LOG_RATE) * (secs + 0.5)) as u64;
    let hz = 100.0; // USER_HZ
    eprintln!(
        "flood: {sent} packets in {secs:.2} s ({:.0} pps); {} drop events (bound {bound}); \
         watcher thread CPU {:.1}%; slowest engine call {slowest:?}",
        sent as f64 / secs,
        drops.len(),
        ticks as f64 / hz / secs * 100.0
    );
    assert!(
        sent as f64 / secs > 50_000.0,
        "the flood was too slow to mean anything"
    );
    assert!(!drops.is_empty(), "no drop events at all");
    assert!(
        drops.len() as u64 <= bound,
        "{} events for {secs:.2} s: the kernel's limit did not hold",
        drops.len()
    );
    assert!(
        slowest < Duration::from_millis(500),
        "engine stalled: {slowest:?}"
    );
}

#[test]
fn a_probe_blocked_at_the_switch_port_is_listed_for_that_point() {
    let Some(h) = Harness::new("evs") else {
        return;
    };
    let _lan = Lan::attach(&h, "evs", "bhtupe", false);
    l2_network(
        &h,
        "b1",
        "l2bridge",
        "198.51.100.0/24",
        Some("198.51.100.254"),
        "bhtupe",
        None,
    );
    let a = endpoint_at(&h, "a", "b1", "198.51.100.11");
    let b = endpoint_at(&h, "b", "b1", "198.51.100.12");
    let id = h.acl(
        &b,
        AclRuleSpec {
            rule_type: Some("switch".into()),
            ..rule("block", "in", "tcp", Some("25"), None, 100)
        },
    );
    let _watcher = h.engine.watch(watch_options(&h)).expect("watch");
    let before = h.engine.events().last_seq();
    assert!(tcp_reaches(&a.ns, &b.ns, 25, b.addr(25)).is_none());
    let e = wait_event(&h.engine, before, |e| {
        e.kind == EventKind::Drop && e.point.as_deref() == Some("switch_port")
    })
    .expect("no switch-port drop event");
    assert_eq!(e.endpoint.as_deref(), Some("b"));
    assert_eq!(e.direction.as_deref(), Some("in"));
    assert_eq!(e.rule.as_deref(), Some(id.as_str()));
    assert_eq!((e.protocol, e.dst_port), (Some(6), Some(25)));
    assert_eq!(
        (e.src, e.dst),
        (Some(IpAddr::V4(a.ip)), Some(IpAddr::V4(b.ip)))
    );
}
