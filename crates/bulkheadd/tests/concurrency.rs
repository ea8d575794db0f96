//! 64 endpoint creates in parallel through the real CLI: each succeeds with
//! an address of its own or fails cleanly (one line, nothing leaked); then
//! the store, the host's switch ports and the namespace pins agree. Also
//! prints (does not assert) the daemon's memory at rest and after 200
//! endpoints.

mod common;

use std::collections::BTreeSet;

use common::Daemon;

#[test]
fn sixty_four_parallel_endpoint_creates() {
    let Some(d) = Daemon::start() else { return };
    d.network("par", "nat", "10.99.0.0/24");
    let results: Vec<(bool, String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let d = &d;
                s.spawn(move || {
                    let name = format!("p{i}");
                    let ns = d.run(&["namespace", "create", &name]);
                    assert!(
                        ns.status.success(),
                        "{}",
                        String::from_utf8_lossy(&ns.stderr)
                    );
                    let out = d.run(&[
                        "--output",
                        "json",
                        "endpoint",
                        "create",
                        &name,
                        "--network",
                        "par",
                        "--namespace",
                        &name,
                    ]);
                    (
                        out.status.success(),
                        String::from_utf8_lossy(&out.stdout).into_owned(),
                        String::from_utf8_lossy(&out.stderr).into_owned(),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let mut ips = BTreeSet::new();
    let mut failed = 0;
    for (ok, stdout, stderr) in &results {
        if *ok {
            let v: serde_json::Value = serde_json::from_str(stdout).expect("json");
            assert!(
                ips.insert(v["ip_address"].as_str().expect("ip").to_owned()),
                "address handed out twice: {v}"
            );
        } else {
            failed += 1;
            assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
        }
    }
    eprintln!(
        "parallel creates: {} ok, {failed} failed cleanly",
        ips.len()
    );
    assert_eq!(failed, 0, "64 creates on a /24 must all succeed");
    let eps = d.assert_consistent();
    assert_eq!(eps.len(), 64);
    assert_eq!(d.pins().len(), 64);
    // And 64 parallel deletes leave nothing behind.
    std::thread::scope(|s| {
        for i in 0..64 {
            let d = &d;
            s.spawn(move || {
                d.ok(&["endpoint", "rm", &format!("p{i}")]);
                d.ok(&["namespace", "rm", &format!("p{i}")]);
            });
        }
    });
    assert!(d.assert_consistent().is_empty());
    assert!(d.pins().is_empty() && d.host_links_become("bhp", &[]).is_empty());
}

#[test]
fn daemon_memory_at_rest_and_with_200_endpoints() {
    let Some(d) = Daemon::start() else { return };
    let rest = d.rss_kb();
    d.network("mem", "nat", "10.100.0.0/22");
    for i in 0..200 {
        let name = format!("m{i}");
        d.ok(&["namespace", "create", &name]);
        d.ok(&[
            "endpoint",
            "create",
            &name,
            "--network",
            "mem",
            "--namespace",
            &name,
        ]);
    }
    let loaded = d.rss_kb();
    assert_eq!(d.assert_consistent().len(), 200);
    // Printed for the report, not asserted (the bench measures 1,000).
    let line = format!(
        "bulkheadd VmRSS: {rest} kB at rest, {loaded} kB with 200 endpoints \
         ({:.1} kB per endpoint)\n",
        (loaded.saturating_sub(rest)) as f64 / 200.0
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}
