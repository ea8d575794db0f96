//! Crash safety: a loop of creates, deletes and ACL changes through the CLI,
//! `kill -9` of the daemon after a seeded pseudo-random delay, restart on the
//! same state dir, and then the store and the kernel agree: every endpoint
//! listed has its switch port and its namespace pin, no `bhp*` link or pin
//! is left without a record, and no address is held twice. At the end every
//! endpoint is removed and the whole subnet is allocated again, which proves
//! no address leaked in the store's IPAM across the crashes.
//!
//! The kill lands at a random point, so the states a crash can leave a
//! namespace pin in are also made by hand, each one every run: a bare pin
//! file (killed between making the file and mounting the namespace on it)
//! and a pin mounted twice (which a single unmount cannot remove).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{ip, Daemon};

/// xorshift64*: deterministic delays, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const RUNS: u64 = 40;
/// Concurrent workers per run, so several operations are in flight at a kill.
const WORKERS: u64 = 3;
/// 10.101.0.0/27: 29 usable addresses besides the gateway, few enough that
/// a leak shows at the end.
const CAPACITY: usize = 29;

/// One worker: create, acl add, acl rm, delete, round and round, until told
/// to stop. Failures (the daemon died under it) are expected and ignored;
/// returns (operations started, operations cut off mid-request by the kill).
fn churn(d: &Daemon, run: u64, worker: u64, stop: &AtomicBool) -> (u32, u32) {
    let (mut i, mut cut) = (0u32, 0u32);
    while !stop.load(Ordering::Relaxed) {
        let name = format!("c{run}w{worker}x{}", i / 4);
        let out = match i % 4 {
            0 => {
                let _ = d.run(&["namespace", "create", &name]);
                d.run(&[
                    "endpoint",
                    "create",
                    &name,
                    "--network",
                    "crash",
                    "--namespace",
                    &name,
                ])
            }
            1 => d.run(&[
                "acl",
                "add",
                &name,
                "--direction",
                "in",
                "--action",
                "block",
                "--protocol",
                "udp",
                "--local-ports",
                "53",
                "--id",
                "r1",
            ]),
            2 => d.run(&["acl", "rm", &name, "r1"]),
            _ => {
                // Remove every other endpoint made, so the set keeps moving.
                let old = format!("c{run}w{worker}x{}", (i / 4).saturating_sub(1));
                let _ = d.run(&["endpoint", "rm", &old]);
                d.run(&["namespace", "rm", &old])
            }
        };
        i += 1;
        if String::from_utf8_lossy(&out.stderr).contains("lost the connection") {
            cut += 1;
        }
    }
    (i, cut)
}

#[test]
fn kill_9_during_creates_deletes_and_acl_changes() {
    let Some(mut d) = Daemon::start() else { return };
    d.network("crash", "nat", "10.101.0.0/27");
    let mut rng = Rng(0x00b0_1dea_d5ee_d001);
    let (mut total_ops, mut total_cut, mut max_live) = (0, 0, 0);
    for run in 0..RUNS {
        let delay = 1 + rng.next() % 100;
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..WORKERS)
                .map(|w| {
                    let (d, stop) = (&d, &stop);
                    s.spawn(move || churn(d, run, w, stop))
                })
                .collect();
            std::thread::sleep(Duration::from_millis(delay));
            // SIGKILL while the worker's request is (likely) in flight.
            let pid = nix::unistd::Pid::from_raw(i32::try_from(d.pid()).expect("pid"));
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill -9");
            stop.store(true, Ordering::Relaxed);
            for w in workers {
                let (ops, cut) = w.join().expect("worker");
                total_ops += ops;
                total_cut += cut;
            }
        });
        d.kill9(); // reap
        d.spawn();
        let eps = d.assert_consistent();
        max_live = max_live.max(eps.len());
        // Every endpoint's namespace exists; ACL listing works.
        let nss = d.names("namespace");
        for e in &eps {
            let ns = e["namespace"].as_str().expect("namespace");
            assert!(
                nss.iter().any(|n| n == ns),
                "run {run}: {e} lost its namespace"
            );
            d.ok(&["acl", "ls", e["name"].as_str().expect("name")]);
        }
        // Keep the pool from filling: drop all but a few survivors.
        for e in eps.iter().skip(4) {
            let name = e["name"].as_str().expect("name");
            d.ok(&["endpoint", "rm", name]);
        }
        for ns in d.names("namespace") {
            if !d.names("endpoint").contains(&ns) {
                d.ok(&["namespace", "rm", &ns]);
            }
        }
        d.assert_consistent();
    }
    // Addresses are unique across restarts: the survivors keep theirs and
    // new endpoints get others; after removing everything, the whole pool
    // can be allocated again (nothing leaked).
    let survivors: BTreeMap<String, String> = d
        .assert_consistent()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["ip_address"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (name, ip) in &survivors {
        assert_eq!(
            &d.json(&["endpoint", "inspect", name])["ip_address"],
            ip.as_str()
        );
    }
    for name in survivors.keys() {
        d.ok(&["endpoint", "rm", name]);
    }
    for ns in d.names("namespace") {
        d.ok(&["namespace", "rm", &ns]);
    }
    d.restart();
    assert!(d.assert_consistent().is_empty());
    for i in 0..CAPACITY {
        let name = format!("full{i}");
        d.ok(&["namespace", "create", &name]);
        d.ok(&[
            "endpoint",
            "create",
            &name,
            "--network",
            "crash",
            "--namespace",
            &name,
        ]);
    }
    assert_eq!(d.assert_consistent().len(), CAPACITY);
    d.ok(&["namespace", "create", "over"]);
    d.fails(&[
        "endpoint",
        "create",
        "over",
        "--network",
        "crash",
        "--namespace",
        "over",
    ]);
    // And the network still carries packets.
    assert!(d.pings("full0", "10.101.0.3"), "ping after the crashes");
    let line = format!(
        "crash test: {RUNS} kill -9 runs x {WORKERS} workers, {total_ops} CLI operations \
         started, {total_cut} cut off mid-request by the kill, up to {max_live} endpoints \
         alive at a restart\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// Whether `/run/netns/NAME` holds a network namespace (an nsfs inode).
fn is_namespace(pin: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self/ns/net").expect("own netns");
    std::fs::metadata(format!("/run/netns/{pin}"))
        .is_ok_and(|m| m.is_file() && m.dev() == own.dev())
}

#[test]
fn a_pin_left_bare_by_a_crash_is_made_again() {
    let Some(mut d) = Daemon::start() else { return };
    d.network("bare", "nat", "10.103.0.0/24");
    d.ok(&["namespace", "create", "x"]);
    d.kill9();
    // What a kill between creating the pin file and the mount leaves: the
    // record is stored, the pin is a plain file, no namespace behind it.
    let pin = format!("{}x", d.prefix);
    nix::mount::umount2(
        format!("/run/netns/{pin}").as_str(),
        nix::mount::MntFlags::MNT_DETACH,
    )
    .expect("unmount the pin");
    assert!(!is_namespace(&pin), "the pin is still a namespace");
    d.spawn();
    assert!(is_namespace(&pin), "reconcile kept a bare pin file");
    d.ok(&[
        "endpoint",
        "create",
        "x",
        "--network",
        "bare",
        "--namespace",
        "x",
    ]);
    d.assert_consistent();
    assert!(d.pings("x", "10.103.0.1"), "x reaches its gateway");
}

#[test]
fn a_pin_mounted_twice_is_removed_all_the_same() {
    let Some(mut d) = Daemon::start() else { return };
    for ns in ["y", "z"] {
        d.ok(&["namespace", "create", ns]);
    }
    // A second mount stacked on each pin (as mount propagation can leave):
    // one unmount leaves the pin busy, and unlinking it fails.
    for ns in ["y", "z"] {
        let pin = format!("/run/netns/{}{ns}", d.prefix);
        nix::mount::mount(
            Some(pin.as_str()),
            pin.as_str(),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("stack a bind mount");
    }
    // Removed by an operation...
    d.ok(&["namespace", "rm", "y"]);
    // ...and by reconcile, as a pin no record owns after a crash.
    d.kill9();
    let z = format!("{}z", d.prefix);
    ip(&["netns", "add", &format!("{}orphan", d.prefix)]);
    let orphan = format!("/run/netns/{}orphan", d.prefix);
    nix::mount::mount(
        Some(orphan.as_str()),
        orphan.as_str(),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .expect("stack a bind mount");
    d.spawn();
    assert_eq!(d.pins(), [z], "pins after reconcile");
    d.ok(&["namespace", "rm", "z"]);
    assert!(d.pins().is_empty(), "{:?}", d.pins());
}
