//! Address refusals through the real daemon keep their meaning: an `--ip`
//! another endpoint holds is 409 Conflict, an IPv6 `--ip` on an IPv4
//! network (and a reserved or foreign address) is 400 Bad Request, each a
//! one-line error naming `ip`, the value and what is allowed, and nothing
//! is stored or programmed (listings, pins, links in the host and target
//! namespaces, and the host's nftables ruleset are unchanged).
//! Before IPAM errors were classified these were all 500 "internal".

mod common;

use std::process::Command;

use common::{endpoint, ip, Daemon};
use serde_json::Value;

fn world() -> Option<Daemon> {
    let d = Daemon::start()?;
    d.network("n1", "nat", "10.94.0.0/24");
    endpoint(&d, "n1", "ns1", "e1");
    d.ok(&["namespace", "create", "ns2"]);
    Some(d)
}

/// Everything a refused create could have left behind.
fn snapshot(d: &Daemon) -> Vec<String> {
    let mut s: Vec<String> = ["network", "namespace", "endpoint"]
        .iter()
        .map(|w| d.json(&[w, "ls"]).to_string())
        .collect();
    s.extend(d.pins());
    s.extend(d.host_links(""));
    s.push(ip(&[
        "-n",
        &format!("{}ns2", d.prefix),
        "-o",
        "link",
        "show",
    ]));
    let nft = Command::new("ip")
        .args(["netns", "exec", &d.host, "nft", "list", "ruleset"])
        .output()
        .expect("run nft");
    s.push(String::from_utf8_lossy(&nft.stdout).into_owned());
    s
}

/// `POST /v1/endpoints` with `body` on the daemon's socket: status and body.
fn post(d: &Daemon, body: &str) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-sS", "--unix-socket"])
        .arg(d.socket())
        .args(["-X", "POST", "-H", "Content-Type: application/json"])
        .args(["-w", "\n%{http_code}", "--data-binary", body])
        .arg("http://localhost/v1/endpoints")
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    let v = serde_json::from_str(body).unwrap_or(Value::Null);
    (code.trim().parse().expect("status"), v)
}

#[test]
fn address_refusals_are_409_or_400_with_one_line_and_change_nothing() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("!!!!! SKIPPED: curl is not installed !!!!!");
        return;
    }
    let Some(d) = world() else { return };
    let taken = d.json(&["endpoint", "inspect", "e1"])["ip_address"]
        .as_str()
        .expect("ip_address")
        .split('/')
        .next()
        .expect("address")
        .to_owned();
    let before = snapshot(&d);
    // (ip, status, code, words of the one line)
    let cases: [(&str, u16, &str, &[&str]); 5] = [
        (
            &taken,
            409,
            "conflict",
            &[
                "in use by endpoint \"e1\"",
                "a free address of 10.94.0.0/24",
            ],
        ),
        (
            "fd00::5",
            400,
            "bad_request",
            &["an IPv4 address inside 10.94.0.0/24"],
        ),
        ("10.94.0.1", 400, "bad_request", &["is the gateway"]),
        (
            "10.94.0.255",
            400,
            "bad_request",
            &["is the broadcast address"],
        ),
        ("10.93.0.5", 400, "bad_request", &["inside 10.94.0.0/24"]),
    ];
    let mut failures = Vec::new();
    for (addr, status, code, words) in cases {
        // The CLI: one line naming the field and the value.
        let line = d.fails(&[
            "endpoint",
            "create",
            "e2",
            "--network",
            "n1",
            "--namespace",
            "ns2",
            "--ip",
            addr,
        ]);
        let missing: Vec<&str> = ["ip", addr]
            .into_iter()
            .chain(words.iter().copied())
            .filter(|w| !line.contains(w))
            .collect();
        if !missing.is_empty() {
            failures.push(format!("cli --ip {addr}: {line:?} lacks {missing:?}"));
        }
        // The API: the status and error code of the class.
        let body = format!(r#"{{"name":"e2","network":"n1","namespace":"ns2","ip":"{addr}"}}"#);
        let (got, v) = post(&d, &body);
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        if got != status || v["error"]["code"] != code || msg.contains('\n') || !msg.contains(addr)
        {
            failures.push(format!("api ip {addr}: {got} {v} (want {status} {code})"));
        }
        if snapshot(&d) != before {
            failures.push(format!("--ip {addr} changed something"));
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The refusals held nothing back: the free address after e1 is taken.
    let e2 = d.json(&[
        "endpoint",
        "create",
        "e2",
        "--network",
        "n1",
        "--namespace",
        "ns2",
    ]);
    assert_ne!(e2["ip_address"].as_str(), Some(taken.as_str()));
}
