//! Helpers for the metrics and console tests: plain HTTP/1.1 to a listener
//! inside the daemon's throwaway host namespace (the test thread enters it
//! with setns for the one connection), headless Chromium run inside that
//! namespace (`ip netns exec`), and readers for the exposition and the
//! dumped DOM. No extra crates: a request is a few lines over a TcpStream.
#![allow(dead_code)]

pub mod cdp;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::Daemon;

/// One HTTP answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// `METHOD path` to `addr` from inside `d`'s host namespace, with extra
/// header lines; the connection is closed after the answer.
pub fn http(d: &Daemon, method: &str, addr: SocketAddr, path: &str, headers: &[&str]) -> Answer {
    http_with_body(d, method, addr, path, headers, "")
}

/// [`http`] with a request body.
pub fn http_with_body(
    d: &Daemon,
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[&str],
    body: &str,
) -> Answer {
    let ns = PathBuf::from("/run/netns").join(&d.host);
    let mut head: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        head.push(format!("Host: {addr}"));
    }
    let request = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\n{}Content-Length: {}\r\n\r\n{body}",
        head.iter().map(|h| format!("{h}\r\n")).collect::<String>(),
        body.len()
    );
    let raw = bulkhead_dataplane::netns::run_in(Some(&ns), move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.write_all(request.as_bytes())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok::<_, std::io::Error>(out)
    })
    .expect("enter the host namespace")
    .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// Whether anything accepts TCP connections on `addr` in `d`'s namespace.
pub fn listening(d: &Daemon, addr: SocketAddr) -> bool {
    let ns = PathBuf::from("/run/netns").join(&d.host);
    bulkhead_dataplane::netns::run_in(Some(&ns), move || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
    })
    .expect("enter the host namespace")
}

/// The value of the sample `name{…}` whose labels include every pair of
/// `labels` (0 when there is none).
pub fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether `chromium` is installed (a loud skip otherwise; CI installs it).
pub fn have_chromium() -> bool {
    let ok = Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed (CI installs it in .ci/run)"
        );
        eprintln!("!!!!! SKIPPED: chromium is not installed !!!!!");
    }
    ok
}

/// Runs headless Chromium inside `d`'s host namespace on `url`, letting
/// the page run `budget_ms` of virtual time (timers fast-forward, network
/// fetches are waited for), with `mode`: `--dump-dom` (the DOM on stdout)
/// or `--screenshot=PATH`.
pub fn chromium(d: &Daemon, url: &str, budget_ms: u32, mode: &str, profile: &Path) -> String {
    let out = Command::new("timeout")
        .args(["120", "ip", "netns", "exec", &d.host, "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--window-size=1400,1500",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg(mode)
        .arg(url)
        .current_dir(profile)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {mode} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// HTML attribute text → its value.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Every element's attributes (in document order) whose start tag
/// contains `marker` (e.g. `class="hop"`), as name → value lists.
pub fn elements(dom: &str, marker: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    for tag in dom.split('<').skip(1) {
        let Some(end) = tag.find('>') else { continue };
        let tag = &tag[..end];
        if !tag.contains(marker) {
            continue;
        }
        let mut attrs = Vec::new();
        let mut rest = tag;
        while let Some(eq) = rest.find("=\"") {
            let name = rest[..eq].rsplit(' ').next().unwrap_or_default().to_owned();
            let after = &rest[eq + 2..];
            let close = after.find('"').unwrap_or(after.len());
            attrs.push((name, unescape(&after[..close])));
            rest = &after[(close + 1).min(after.len())..];
        }
        out.push(attrs);
    }
    out
}

/// The value of `attr` in `attrs`.
pub fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> &'a str {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The values of `name` on every element whose tag contains `marker`.
pub fn set_of(dom: &str, marker: &str, name: &str) -> BTreeSet<String> {
    elements(dom, marker)
        .iter()
        .map(|a| attr(a, name).to_owned())
        .collect()
}

/// A set of names.
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The packets counted by rule `rule` at `point`/`direction` of `ep`.
pub fn rule_packets(dom: &str, ep: &str, point: &str, direction: &str, rule: &str) -> u64 {
    // Rows follow their endpoint's section: cut the DOM at the section.
    let start = dom
        .find(&format!("class=\"ep\" data-endpoint=\"{ep}\""))
        .unwrap_or_else(|| panic!("no ACL section for {ep}"));
    let section = &dom[start..];
    let section = &section[..section[1..]
        .find("class=\"ep\"")
        .map_or(section.len(), |i| i + 1)];
    elements(section, "data-packets")
        .iter()
        .find(|a| {
            attr(a, "data-point") == point
                && attr(a, "data-direction") == direction
                && attr(a, "data-rule") == rule
        })
        .map(|a| attr(a, "data-packets").parse().expect("packets"))
        .unwrap_or_else(|| panic!("no row {point} {direction} {rule} for {ep}"))
}

/// All packets counted at `ep`'s points, as its ACL section says.
pub fn endpoint_packets(dom: &str, ep: &str) -> u64 {
    elements(dom, "class=\"ep\"")
        .iter()
        .find(|a| attr(a, "data-endpoint") == ep)
        .map(|a| attr(a, "data-packets").parse().expect("packets"))
        .unwrap_or_else(|| panic!("no section for {ep}"))
}

/// A TCP connection attempt from namespace `ns` of `d` (one SYN: no
/// retransmit within 300 ms).
pub fn connects(d: &Daemon, ns: &str, to: SocketAddr) -> bool {
    let path = PathBuf::from("/run/netns").join(format!("{}{ns}", d.prefix));
    bulkhead_dataplane::netns::run_in(Some(&path), || {
        TcpStream::connect_timeout(&to, Duration::from_millis(300)).is_ok()
    })
    .expect("enter namespace")
}
