//! The cluster test kit itself (`bulkhead_testkit::cluster`): etcd comes
//! up on the underlay and serves every host namespace, survives an outage
//! on its data dir, refuses TLS clients without a certificate of its CA;
//! a host's daemon restarts on its state dir after kill -9.

use bulkhead_testkit::cluster::{Etcd, Host, Underlay, UNDERLAY_DEV};
use bulkhead_testkit::netns::links;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn etcd_serves_every_host_and_keeps_its_data_across_an_outage() {
    let Some(ul) = Underlay::new() else { return };
    let mut etcd = Etcd::new(&ul);
    let (a, b) = (Host::new(&ul, "node-a"), Host::new(&ul, "node-b"));
    assert_eq!(links(a.ns_name(), UNDERLAY_DEV), [UNDERLAY_DEV]);
    assert_ne!(a.addr, b.addr);
    assert!(etcd.url().starts_with("http://10.98.0."), "{}", etcd.url());

    etcd.ctl_ok(a.ns_name(), &["put", "/bht/k", "from-a"]);
    let got = etcd.ctl_ok(b.ns_name(), &["get", "--print-value-only", "/bht/k"]);
    assert_eq!(got.trim(), "from-a");

    // Outage: nothing answers, and the caller learns it within the timeout.
    etcd.stop();
    assert!(!etcd.is_running());
    let t = std::time::Instant::now();
    let down = etcd.ctl(b.ns_name(), &["get", "/bht/k"]);
    assert!(!down.status.success(), "etcd answered while stopped");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));

    // Back on the same data dir: the acknowledged write is there.
    etcd.start();
    let got = etcd.ctl_ok(a.ns_name(), &["get", "--print-value-only", "/bht/k"]);
    assert_eq!(got.trim(), "from-a");
    etcd.ctl_ok(b.ns_name(), &["put", "/bht/k", "from-b"]);
    let got = etcd.ctl_ok(a.ns_name(), &["get", "--print-value-only", "/bht/k"]);
    assert_eq!(got.trim(), "from-b");
}

#[test]
fn tls_etcd_refuses_clients_without_a_certificate_of_its_ca() {
    let Some(ul) = Underlay::new() else { return };
    let etcd = Etcd::new_tls(&ul);
    let h = Host::new(&ul, "node-a");
    assert!(etcd.url().starts_with("https://"), "{}", etcd.url());
    let tls = etcd.tls().expect("tls");

    // The node's certificate gets in.
    etcd.ctl_ok(h.ns_name(), &["put", "/bht/t", "v"]);
    let got = etcd.ctl_ok(h.ns_name(), &["get", "--print-value-only", "/bht/t"]);
    assert_eq!(got.trim(), "v");
    let daemon_args = etcd.daemon_args().join(" ");
    for flag in ["--etcd-cacert", "--etcd-cert", "--etcd-key"] {
        assert!(daemon_args.contains(flag), "{daemon_args}");
    }

    // The same request without a client certificate, and with a client
    // certificate of another CA, is refused.
    let ca = format!("--cacert={}", tls.ca.display());
    let no_cert = etcd.ctl_raw(h.ns_name(), &[&ca], &["get", "/bht/t"]);
    assert!(!no_cert.status.success(), "no cert: {}", stdout(&no_cert));
    // Refused for the certificate, not for want of a route.
    let from = format!("\"remote-addr\":\"{}:", h.addr);
    // (etcd logs a refusal after etcdctl may already have given up.)
    let refused = |why: &str| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let log = etcd.log();
            if log
                .lines()
                .any(|l| l.contains("rejected connection") && l.contains(&from) && l.contains(why))
            {
                return true;
            }
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    assert!(refused("didn't provide a certificate"), "{}", etcd.log());
    let (cert, key) = (
        format!("--cert={}", tls.rogue_cert.display()),
        format!("--key={}", tls.rogue_key.display()),
    );
    let rogue = etcd.ctl_raw(h.ns_name(), &[&ca, &cert, &key], &["get", "/bht/t"]);
    assert!(!rogue.status.success(), "rogue cert: {}", stdout(&rogue));
    assert!(refused("signed by unknown authority"), "{}", etcd.log());
    // Nor does a client that does not check the server get in.
    let insecure = etcd.ctl_raw(
        h.ns_name(),
        &["--insecure-skip-tls-verify"],
        &["get", "/bht/t"],
    );
    assert!(
        !insecure.status.success(),
        "insecure: {}",
        stdout(&insecure)
    );
}

#[test]
fn a_hosts_daemon_comes_back_on_its_state_dir_after_kill_9() {
    let Some(ul) = Underlay::new() else { return };
    let mut h = Host::new(&ul, "node-a");
    // No cluster flags here: the kit's own restart path, product aside.
    h.spawn();
    h.ok(&[
        "network",
        "create",
        "ov",
        "--driver",
        "overlay",
        "--subnet",
        "10.200.0.0/24",
        "--uplink",
        UNDERLAY_DEV,
        "--vni",
        "4242",
    ]);
    let before = h.pid();
    h.kill9();
    assert!(!h.is_running());
    h.spawn();
    assert!(h.is_running());
    assert_ne!(h.pid(), before);
    assert_eq!(h.names("network"), ["ov"]);
}
