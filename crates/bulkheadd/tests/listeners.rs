//! The read-only listeners (`--web-address`, `--metrics-address`) against
//! the real daemon: off by default; a wildcard or a host name stops the
//! daemon; a non-loopback address is served only when named; every write
//! method on every route is refused (while the very same request on the API
//! socket is a real write); a foreign `Host` is refused (DNS rebinding).

mod common;
mod web_kit;

use std::net::SocketAddr;
use std::process::Command;

use common::{ip, Daemon};
use web_kit::{http, listening};

const METRICS: &str = "127.0.0.1:9469";
const WEB: &str = "127.0.0.1:8469";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

#[test]
fn listeners_refuse_writes_are_off_by_default_and_bind_only_named_addresses() {
    let Some(mut d) = Daemon::start() else { return };
    assert!(
        !listening(&d, addr(WEB)) && !listening(&d, addr(METRICS)),
        "a listener is on by default"
    );
    d.stop();
    // A wildcard or a host name is refused before anything starts.
    for (flag, value, why) in [
        ("--web-address", "0.0.0.0:8469", "wildcard"),
        ("--metrics-address", "[::]:9469", "wildcard"),
        (
            "--web-address",
            "example.com:80",
            "host names are not resolved",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_bulkheadd"))
            .args([flag, value, "--state-dir"])
            .arg(d.state_dir())
            .output()
            .expect("bulkheadd");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(flag) && err.contains(why),
            "{flag} {value}: {err}"
        );
    }
    // A non-loopback address of the host, named: served.
    ip(&["-n", &d.host, "addr", "add", "192.0.2.1/32", "dev", "lo"]);
    d.extra_args = [
        "--web-address",
        "192.0.2.1:8469",
        "--metrics-address",
        METRICS,
    ]
    .map(String::from)
    .to_vec();
    d.spawn();
    let web = addr("192.0.2.1:8469");
    assert!(!listening(&d, addr(WEB)), "the console also bound loopback");
    assert_eq!(http(&d, "GET", web, "/", &[]).status, 200);
    assert_eq!(http(&d, "GET", web, "/api/topology", &[]).status, 200);
    d.network("n", "nat", "10.238.0.0/24");
    let networks = d.names("network");
    for (listener, paths) in [
        (
            web,
            &[
                "/",
                "/api/topology",
                "/api/trace",
                "/api/events",
                "/metrics",
                "/v1/networks",
            ][..],
        ),
        (addr(METRICS), &["/metrics", "/v1/networks/n"][..]),
    ] {
        for path in paths {
            for method in ["POST", "PUT", "DELETE", "PATCH"] {
                let a = http(&d, method, listener, path, &[]);
                assert_eq!(a.status, 405, "{method} {path}: {}", a.body);
                assert!(
                    a.head.to_ascii_lowercase().contains("allow: get, head"),
                    "{}",
                    a.head
                );
            }
        }
    }
    assert_eq!(
        d.names("network"),
        networks,
        "a refused write changed something"
    );
    // The same request is a real write where writes are allowed (the API
    // socket): what the listeners refuse would have created a network.
    let create = r#"{"name":"w","driver":"nat","subnet":"10.241.0.0/24"}"#;
    let json = ["Content-Type: application/json"];
    for listener in [web, addr(METRICS)] {
        let a = web_kit::http_with_body(&d, "POST", listener, "/v1/networks", &json, create);
        assert_eq!(a.status, 405, "{}", a.body);
    }
    assert_eq!(d.names("network"), networks);
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--unix-socket",
        ])
        .arg(d.socket())
        .args([
            "-X",
            "POST",
            "-H",
            json[0],
            "-d",
            create,
            "http://bulkhead/v1/networks",
        ])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "201");
    assert!(d.names("network").contains(&"w".to_owned()));
    // DNS rebinding: a page of another site reaching the listener by name.
    let a = http(
        &d,
        "GET",
        web,
        "/api/topology",
        &["Host: attacker.example:8469"],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(
        http(
            &d,
            "GET",
            addr(METRICS),
            "/metrics",
            &["Host: localhost:9469"]
        )
        .status,
        200
    );
}
