//! `bulkhead demo --vm` for real, as root: a QEMU guest (TCG) on a vm
//! endpoint's TAP next to a process endpoint. The assertions read the
//! values the demo printed from its own probes — the guest's DHCP lease
//! against its endpoint's address, each probe's `crossed`/`blocked`, the
//! address the process endpoint saw, the guest kernel's TCP counter — so
//! a guest without a lease, traffic that does not cross, a block that
//! lets anything through or a removal that does not restore fails here.
//! Without the guest's tools, `demo --vm` stops at once in one line.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `bulkhead demo ARGS` (with `path` as `PATH` when given); its
/// output and pid.
fn demo(args: &[&str], path: Option<&str>) -> (Output, u32) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkhead"));
    cmd.arg("demo").args(args);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

/// Whether this machine can run the test; skips loudly, fails under CI.
fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root"
        );
        eprintln!("SKIPPED: demo --vm needs root");
        return false;
    }
    if let Err(e) = bulkhead_guest::check_host() {
        assert!(std::env::var("CI").is_err(), "CI must boot guests: {e}");
        eprintln!("SKIPPED: {e}");
        return false;
    }
    true
}

/// The word after `key` on the first line starting (after spaces) with
/// `line`.
fn value<'a>(text: &'a str, line: &str, key: &str) -> &'a str {
    let l = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(line))
        .unwrap_or_else(|| panic!("no line {line:?} in\n{text}"));
    l.split_once(key)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {key:?} in {l:?}"))
        .trim_end_matches([':', ',', ')'])
}

/// One round of the demo's guest probes, as printed.
#[derive(Debug, PartialEq, Eq)]
struct Round {
    results: Vec<String>,
    app_saw: Vec<String>,
    segments: u64,
}

/// The three rounds (open, blocked, restored), from the probe tables.
fn rounds(text: &str) -> Vec<Round> {
    let mut out = Vec::new();
    let mut cur: Option<Round> = None;
    for l in text.lines().map(str::trim) {
        if l.starts_with("guest -> app") || l.starts_with("app -> guest") {
            let r = cur.get_or_insert(Round {
                results: Vec::new(),
                app_saw: Vec::new(),
                segments: 0,
            });
            let words: Vec<&str> = l.split_whitespace().collect();
            r.results.push(words[4].to_owned());
            if let Some((_, saw)) = l.split_once("(app saw ") {
                r.app_saw.push(saw.trim_end_matches(')').to_owned());
            }
        } else if let Some(n) = l.strip_prefix("TCP segments the guest's kernel received: ") {
            let mut r = cur.take().expect("a probe table before its counter");
            r.segments = n.parse().expect("a count");
            out.push(r);
        }
    }
    out
}

#[test]
fn demo_vm_guest_gets_its_lease_crosses_is_cut_off_and_restored() {
    if !can_run() {
        return;
    }
    let started = Instant::now();
    let (out, pid) = demo(&["--vm"], None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("demo --vm took {:?}\n{text}", started.elapsed());
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The default tour ran first, unchanged.
    assert!(
        text.contains("kernel and trace agreed on every cell"),
        "{text}"
    );
    let endpoint_ip = value(&text, "endpoint guest:", "guest:");
    let lease = value(&text, "guest DHCP lease from bulkhead:", "bulkhead:");
    assert_eq!(
        lease, endpoint_ip,
        "the guest leased its endpoint's address"
    );
    let tap = value(&text, "endpoint guest:", "TAP");
    assert!(tap.starts_with("bhp"), "the TAP is a switch port: {tap}");
    let rs = rounds(&text);
    assert_eq!(rs.len(), 3, "open, blocked, restored: {rs:?}");
    let crossed = vec!["crossed".to_owned(); 3];
    let blocked = vec!["blocked".to_owned(); 3];
    assert_eq!(rs[0].results, crossed, "guest <-> app crosses");
    assert_eq!(
        rs[0].app_saw,
        [lease],
        "the app saw the guest's own address"
    );
    assert!(rs[0].segments > 0, "the guest counted the TCP it received");
    assert_eq!(rs[1].results, blocked, "the switch-port rules cut it off");
    assert_eq!(rs[1].segments, 0, "the guest never saw a segment");
    assert_eq!(rs[2].results, crossed, "removing the rules restores it");
    assert_eq!(rs[2].app_saw, [lease]);
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("bhdemo{pid}")))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "demo left namespaces: {left:?}");
    assert!(
        !std::env::temp_dir()
            .join(format!("bulkhead-demo-{pid}-guest"))
            .exists(),
        "demo left its guest boot files"
    );
}

#[test]
fn demo_vm_without_qemu_names_it_and_its_package_at_once() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (out, pid) = demo(&["--vm"], dir.path().to_str());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "bulkhead: demo --vm: qemu-system-x86_64 is missing (install the Debian package qemu-system-x86)\n"
    );
    assert!(out.stdout.is_empty(), "nothing was started: {out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!std::path::Path::new(&format!("/run/netns/bhdemo{pid}")).exists());
}
