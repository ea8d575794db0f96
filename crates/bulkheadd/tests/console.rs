//! The web console in a real browser (spec §12): bulkheadd with
//! `--web-address` in a throwaway host namespace, a small topology (a nat
//! and an l2bridge network, four namespaces and endpoints, a host-firewall
//! and a switch-port block rule), and headless
//! Chromium run inside that namespace. Its DOM, dumped after the page ran,
//! must hold every network, switch port, namespace and endpoint with its
//! address; the counters and the drop list must move after real probes
//! (while the page polls, without a reload); and a trace run from the page's
//! form (filled from the URL) must match `bulkhead trace`. A screenshot is
//! saved (set BULKHEAD_UPDATE_SCREENSHOT=1 to refresh docs/console.png).

mod common;
mod web_kit;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::Value;
use web_kit::{attr, chromium, connects, elements, endpoint_packets, rule_packets, set, set_of};

const WEB: &str = "127.0.0.1:8469";

#[test]
fn the_console_in_chromium_shows_topology_live_counters_drops_and_trace() {
    if !web_kit::have_chromium() {
        return;
    }
    let Some(d) = Daemon::start_with(&["--web-address", WEB]) else {
        return;
    };
    // n: nat (host firewall only); m: l2bridge on an uplink of the
    // throwaway host (both points: host firewall and switch port).
    common::ip(&[
        "-n", &d.host, "link", "add", "bhtul0", "type", "veth", "peer", "name", "bhtul1",
    ]);
    for link in ["bhtul0", "bhtul1"] {
        common::ip(&["-n", &d.host, "link", "set", link, "up"]);
    }
    d.network("n", "nat", "10.239.0.0/24");
    let l2 = [
        "--subnet",
        "10.240.0.0/24",
        "--gateway",
        "10.240.0.1",
        "--uplink",
        "bhtul0",
    ];
    d.ok(&[
        &["network", "create", "m", "--driver", "l2bridge"][..],
        &l2[..],
    ]
    .concat());
    let mut eps = Vec::new();
    for (net, ns, ep) in [
        ("n", "nsa", "a"),
        ("n", "nsb", "b"),
        ("m", "nsc", "c"),
        ("m", "nse", "e"),
    ] {
        eps.push(common::endpoint(&d, net, ns, ep));
    }
    let ip_of = |e: &Value| {
        let s = e["ip_address"].as_str().expect("ip_address");
        s.split('/').next().unwrap_or_default().to_owned()
    };
    let b_ip = ip_of(&eps[1]);
    let block = ["acl", "add", "b", "--direction", "in", "--action", "block"];
    let rule = [
        "--protocol",
        "tcp",
        "--local-ports",
        "23",
        "--priority",
        "100",
    ];
    let id = d.ok(&[&block[..], &rule[..]].concat()).trim().to_owned();
    let switch = [
        "acl",
        "add",
        "c",
        "--direction",
        "out",
        "--action",
        "block",
        "--rule-type",
        "switch",
    ];
    let discard = [
        "--protocol",
        "udp",
        "--remote-ports",
        "9",
        "--priority",
        "100",
        "--id",
        "no-discard",
    ];
    d.ok(&[&switch[..], &discard[..]].concat());
    let e_ip = ip_of(&eps[3]);
    assert!(d.pings("nsa", &b_ip), "a cannot reach b");
    assert!(d.pings("nsc", &e_ip), "c cannot reach e");

    let profiles = tempfile::tempdir().expect("tempdir");
    let profile = |name: &str| {
        let p = profiles.path().join(name);
        std::fs::create_dir_all(&p).expect("profile dir");
        p
    };
    let url = format!("http://{WEB}/");
    let before = chromium(&d, &url, 3000, "--dump-dom", &profile("one"));

    // The picture: every network as a switch, every port, namespace and
    // endpoint (with its address) — exactly those the CLI lists.
    assert_eq!(
        set_of(&before, "class=\"switch network\"", "data-network"),
        set(&["m", "n"])
    );
    assert_eq!(
        set_of(&before, "class=\"namespace\"", "data-namespace"),
        set(&["nsa", "nsb", "nsc", "nse"])
    );
    assert_eq!(
        set_of(&before, "class=\"endpoint\"", "data-endpoint"),
        set(&["a", "b", "c", "e"])
    );
    let addresses: BTreeSet<String> = eps
        .iter()
        .map(|e| e["ip_address"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        set_of(&before, "class=\"endpoint\"", "data-address"),
        addresses
    );
    let ports: BTreeSet<String> = eps
        .iter()
        .map(|e| e["switch_port"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(set_of(&before, "class=\"port\"", "data-port"), ports);
    assert!(
        before.contains(&format!("data-rule=\"{id}\"")),
        "b's ACL is not listed"
    );
    let b_packets = endpoint_packets(&before, "b");
    let blocked = rule_packets(&before, "b", "host", "in", &id);
    let discarded = rule_packets(&before, "c", "switch", "out", "no-discard");

    // Real traffic: three pings a -> b, two connections b's rule blocks.
    for _ in 0..3 {
        assert!(d.pings("nsa", &b_ip));
    }
    let to: SocketAddr = format!("{b_ip}:23").parse().expect("address");
    for _ in 0..2 {
        assert!(!connects(&d, "nsa", to), "the block rule does not block");
    }
    // Two datagrams c -> e:9, blocked at c's switch port.
    let nsc = PathBuf::from("/run/netns").join(format!("{}nsc", d.prefix));
    let discard_to: SocketAddr = format!("{e_ip}:9").parse().expect("address");
    bulkhead_dataplane::netns::run_in(Some(&nsc), || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
        s.send_to(b"one", discard_to)?;
        s.send_to(b"two", discard_to).map(|_| ())
    })
    .expect("enter nsc")
    .expect("send udp");
    let until = Instant::now() + Duration::from_secs(3);
    while !d
        .ok(&["--output", "json", "events", "--endpoint", "b"])
        .contains("\"drop\"")
    {
        assert!(Instant::now() < until, "no drop event recorded");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The page again, with a trace in its URL (the form is filled from it
    // and submitted), and a screenshot, at once; `bulkhead trace` meanwhile.
    let traced = format!("{url}#trace?from=a&to=b&protocol=tcp&port=23");
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    let (after, cli) = std::thread::scope(|s| {
        let dom = s.spawn(|| chromium(&d, &traced, 5000, "--dump-dom", &profile("two")));
        let png = s.spawn(|| {
            chromium(
                &d,
                &traced,
                5000,
                &format!("--screenshot={}", shot.display()),
                &profile("three"),
            )
        });
        let cli = d.json(&[
            "trace",
            "--from",
            "a",
            "--to",
            "b",
            "--protocol",
            "tcp",
            "--port",
            "23",
        ]);
        png.join().expect("screenshot");
        (dom.join().expect("dom"), cli)
    });

    // Counters moved as the packets did; the page polled without reload.
    assert!(
        endpoint_packets(&after, "b") >= b_packets + 3,
        "b's counters did not move"
    );
    assert_eq!(rule_packets(&after, "b", "host", "in", &id), blocked + 2);
    assert_eq!(
        rule_packets(&after, "c", "switch", "out", "no-discard"),
        discarded + 2
    );
    let polls: u32 = set_of(&after, "id=\"status\"", "data-polls")
        .into_iter()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert!(polls >= 2, "the page did not poll again: {polls}");
    let drops = elements(&after, "class=\"event drop\"");
    assert!(
        drops.iter().any(|e| attr(e, "data-endpoint") == "b"),
        "no drop of b listed"
    );

    // The trace from the form is `bulkhead trace`, step by step.
    let verdict = set_of(&after, "id=\"trace-verdict\"", "data-verdict");
    assert_eq!(verdict, set(&[cli["verdict"].as_str().expect("verdict")]));
    let hops: Vec<[String; 5]> = elements(&after, "class=\"hop\"")
        .iter()
        .map(|a| {
            [
                "data-stage",
                "data-point",
                "data-location",
                "data-rule",
                "data-verdict",
            ]
            .map(|k| attr(a, k).to_owned())
        })
        .collect();
    let want: Vec<[String; 5]> = cli["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|h| {
            ["stage", "point", "location", "rule", "verdict"]
                .map(|k| h[k].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert_eq!(hops, want);
    assert_eq!(
        want.last().map(|h| h[3].as_str()),
        Some(id.as_str()),
        "the trace names the block rule"
    );

    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "not a picture"
    );
    if std::env::var_os("BULKHEAD_UPDATE_SCREENSHOT").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/console.png");
        std::fs::write(docs, &png).expect("write docs/console.png");
    }
}

/// One page kept open in Chromium (DevTools protocol over a pipe): its
/// counters move after real probes without a reload (a value the test
/// left in the page survives), and the trace form, filled and clicked as a
/// person would, shows what `bulkhead trace` says.
#[test]
fn an_open_console_updates_without_reload_and_its_trace_form_works() {
    if !web_kit::have_chromium() {
        return;
    }
    let Some(d) = Daemon::start_with(&["--web-address", WEB]) else {
        return;
    };
    d.network("n", "nat", "10.243.0.0/24");
    common::endpoint(&d, "n", "nsa", "a");
    let b = common::endpoint(&d, "n", "nsb", "b");
    let b_ip = b["ip_address"]
        .as_str()
        .expect("ip")
        .split('/')
        .next()
        .expect("ip")
        .to_owned();
    let block = [
        "acl",
        "add",
        "b",
        "--direction",
        "in",
        "--action",
        "block",
        "--id",
        "no-telnet",
    ];
    d.ok(&[
        &block[..],
        &[
            "--protocol",
            "tcp",
            "--local-ports",
            "23",
            "--priority",
            "100",
        ][..],
    ]
    .concat());
    assert!(d.pings("nsa", &b_ip), "a cannot reach b");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut page = web_kit::cdp::Browser::open(&d, &format!("http://{WEB}/"), dir.path());
    let row = r#"document.querySelector('.ep[data-endpoint="b"] tr[data-rule="no-telnet"][data-point="host"]')"#;
    page.wait_for(&format!("{row} !== null"), Duration::from_secs(20));
    let before = page.eval(&format!("Number({row}.dataset.packets)"));
    let before = before.as_u64().expect("packets");
    let polls = "Number(document.getElementById('status').dataset.polls)";
    let polls_before = page.eval(polls).as_u64().expect("polls");
    page.eval("window.bhtMarker = 'no reload'");

    let to: SocketAddr = format!("{b_ip}:23").parse().expect("address");
    for _ in 0..2 {
        assert!(!connects(&d, "nsa", to), "the block rule does not block");
    }
    let moved = format!("Number({row}.dataset.packets) === {}", before + 2);
    page.wait_for(&moved, Duration::from_secs(10));
    assert_eq!(page.eval("window.bhtMarker"), Value::from("no reload"));
    assert!(page.eval(polls).as_u64() > Some(polls_before));

    // The form, filled and submitted with its button.
    page.eval(
        "(() => { const f = document.getElementById('trace-form');
            f.elements.from.value = 'a'; f.elements.to.value = 'b';
            f.elements.protocol.value = 'tcp'; f.elements.port.value = '23';
            f.querySelector('button').click(); })()",
    );
    page.wait_for(
        "document.getElementById('trace-verdict') !== null",
        Duration::from_secs(10),
    );
    let shown = page.eval(
        "JSON.stringify([...document.querySelectorAll('#trace-hops .hop')].map(h =>
            [h.dataset.stage, h.dataset.point, h.dataset.location, h.dataset.rule, h.dataset.verdict]))",
    );
    let shown: Vec<[String; 5]> =
        serde_json::from_str(shown.as_str().expect("json")).expect("hops");
    let cli = d.json(&[
        "trace",
        "--from",
        "a",
        "--to",
        "b",
        "--protocol",
        "tcp",
        "--port",
        "23",
    ]);
    let want: Vec<[String; 5]> = cli["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|h| {
            ["stage", "point", "location", "rule", "verdict"]
                .map(|k| h[k].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert_eq!(shown, want);
    assert_eq!(want.last().map(|h| h[3].as_str()), Some("no-telnet"));
    let verdict = page.eval("document.getElementById('trace-verdict').dataset.verdict");
    assert_eq!(verdict, cli["verdict"]);
    // The trace is now also the page's URL, to share.
    let hash = page.eval("location.hash");
    assert_eq!(hash, Value::from("#trace?from=a&to=b&protocol=tcp&port=23"));
}
