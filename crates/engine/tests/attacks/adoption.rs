//! Attacks: adoption (see `docs/security.md`). A tenant (or a confused
//! runtime) hands bulkhead a network namespace that is not a container's:
//! the daemon's host namespace, the root namespace, a namespace another
//! container already holds, or a path that is re-bound to the host after
//! adoption. Each is first shown doing damage by the lower-level step the
//! old code took (a table delete by name, by path), then refused; and a
//! port being created never passes a packet before its tables are in.
//!
//! Nothing here programs the machine's root namespace: for "root" only the
//! refusal is shown; the "host" is the harness's throwaway host namespace.

use std::path::{Path, PathBuf};
use std::process::Command;

use bulkhead_dataplane::kernel::{Kernel, TableChange};
use bulkhead_dataplane::netns::{self, NetnsGuard};
use bulkhead_dataplane::nft::NftSocket;
use bulkhead_dataplane::testing;
use bulkhead_engine::Engine;
use bulkhead_model::{EndpointSpec, NamespaceSpec};
use bulkhead_policy::compile::{FIREWALL_TABLE, LEGACY_FIREWALL_TABLE, TABLE};
use bulkhead_policy::diff::Op;
use bulkhead_policy::ir::{Family, Table};

use crate::common::Harness;

#[path = "adoption_fail_closed.rs"]
mod fail_closed;

/// Names of the inet tables in `ns`.
fn tables(ns: &Path) -> Vec<String> {
    NftSocket::open(Some(ns))
        .expect("nft socket")
        .list_tables(Some(bulkhead_dataplane::nft::Family::Inet))
        .expect("list tables")
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// What a DEL of an adopted namespace's last endpoint did before the
/// firewall had its own name: delete table `inet <name>` at the path.
fn delete_by_path(kernel: &dyn Kernel, netns: &Path, name: &str) {
    let current = Table::new(Family::Inet, name);
    kernel
        .apply(
            Some(netns),
            &[TableChange {
                family: Family::Inet,
                table: name.into(),
                current: Some(&current),
                replace: false,
                ops: vec![Op::DeleteTable {
                    family: Family::Inet,
                    name: name.into(),
                }],
            }],
        )
        .unwrap_or_else(|e| panic!("delete inet {name} in {}: {e}", netns.display()));
}

fn adopt(h: &Harness, name: &str, path: &Path, container: &str) -> Result<(), String> {
    adopt_in(&h.engine, name, path, container)
}

fn adopt_in(engine: &Engine, name: &str, path: &Path, container: &str) -> Result<(), String> {
    engine
        .adopt_namespace(
            NamespaceSpec {
                name: name.into(),
                isolation: None,
                ..NamespaceSpec::default()
            },
            path.to_str().expect("utf-8 path"),
            Some(container),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn endpoint(engine: &Engine, name: &str, network: &str, ns: &str) -> Result<(), String> {
    engine
        .create_endpoint(EndpointSpec {
            name: name.into(),
            network: network.into(),
            namespace: ns.into(),
            ..Default::default()
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A namespace made the way a runtime makes one (not our prefix).
fn runtime_netns(tag: &str) -> NetnsGuard {
    let g = NetnsGuard::create(&testing::unique_name(tag)).expect("runtime netns");
    crate::common::ip(&["-n", g.name(), "link", "set", "lo", "up"]);
    g
}

/// Runs `f` with a *second* path to the namespace `ns`: the task entry of
/// a thread that has entered it (`/proc/PID/task/TID/ns/net`).
fn with_second_path<R: Send>(ns: &Path, f: impl FnOnce(&Path) -> R + Send) -> R {
    netns::run_in(Some(ns), || {
        // `/proc/thread-self` -> `PID/task/TID`: stable while this thread runs.
        let task = std::fs::read_link("/proc/thread-self").expect("thread-self");
        let path = Path::new("/proc").join(task).join("ns/net");
        f(&path)
    })
    .expect("enter namespace")
}

fn assert_one_line_naming(err: &str, path: &Path, what: &str) {
    assert!(!err.contains('\n'), "{err}");
    assert!(
        err.contains("netns_path") && err.contains(&*path.to_string_lossy()) && err.contains(what),
        "want netns_path, {} and {what:?} in: {err}",
        path.display()
    );
}

#[test]
fn adopting_the_daemons_host_namespace_is_refused() {
    let Some(h) = Harness::new("adhost") else {
        return;
    };
    h.nat_network("n1", "10.62.1.0/24", None);
    h.endpoint("a", "n1", &[], None);
    let host = h.host().to_path_buf();
    assert!(tables(&host).contains(&TABLE.to_owned()));
    // Weakened: the firewall under the switch table's name, removed in a
    // namespace that is the host: the switch table (anti-spoofing, ACLs of
    // every endpoint) is gone.
    delete_by_path(&*h.kernel, &host, LEGACY_FIREWALL_TABLE);
    assert!(
        !tables(&host).contains(&TABLE.to_owned()),
        "the old-named firewall delete must hit the switch table"
    );
    h.engine.reconcile().expect("reconcile restores");
    assert!(tables(&host).contains(&TABLE.to_owned()));
    // bulkhead: the firewall has its own name, so even a firewall delete
    // aimed at the host cannot touch a host table ...
    assert_ne!(FIREWALL_TABLE, TABLE);
    // ... and the host namespace is refused by identity, under any path.
    let err = adopt(&h, "h1", &host, "ctr-h1").unwrap_err();
    assert_one_line_naming(&err, &host, "host namespace");
    let err = with_second_path(&host, |p| {
        let e = adopt(&h, "h2", p, "ctr-h2").unwrap_err();
        assert_one_line_naming(&e, p, "host namespace");
        e
    });
    assert!(!err.is_empty());
    // The process's own namespace (the daemon's): refused too.
    let own = Path::new("/proc/self/ns/net");
    let err = adopt(&h, "h3", own, "ctr-h3").unwrap_err();
    assert!(
        err.contains("own namespace") || err.contains("root namespace"),
        "{err}"
    );
    assert_eq!(h.engine.namespaces().len(), 1, "only a's namespace");
    assert!(tables(&host).contains(&TABLE.to_owned()));
    assert!(!tables(&host).contains(&FIREWALL_TABLE.to_owned()));
}

#[test]
fn adopting_the_root_namespace_is_refused() {
    let Some(h) = Harness::new("adroot") else {
        return;
    };
    // Refusal only: nothing is ever programmed in the machine's namespace.
    let root = Path::new("/proc/1/ns/net");
    let err = adopt(&h, "r1", root, "ctr-r1").unwrap_err();
    // Where pid 1 is out of reach (a sandbox denying /proc/1/ns), the path
    // cannot even be opened, and is refused as such.
    let unreadable =
        std::fs::File::open(root).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    let why = if unreadable {
        "Permission denied"
    } else {
        "root namespace"
    };
    assert_one_line_naming(&err, root, why);
    assert!(h.engine.namespaces().is_empty());
}

#[test]
fn a_namespace_adopted_under_another_id_is_refused() {
    let Some(h) = Harness::new("adtwice") else {
        return;
    };
    h.nat_network("n1", "10.62.2.0/24", None);
    let pod = runtime_netns("adpod");
    adopt(&h, "pod-a", pod.path(), "ctr-a").expect("adopt pod-a");
    endpoint(&h.engine, "a", "n1", "pod-a").expect("endpoint a");
    assert!(tables(pod.path()).contains(&FIREWALL_TABLE.to_owned()));
    // Strict TCP tracking holds in adopted namespaces too.
    let loose = netns::run_in(Some(pod.path()), || {
        std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_tcp_loose")
    })
    .expect("enter pod")
    .expect("read sysctl");
    assert_eq!(loose.trim(), "0");
    // Weakened: a second record for the same namespace; its DEL removes the
    // namespace's firewall, and pod-a's endpoint loses its host ACLs.
    delete_by_path(&*h.kernel, pod.path(), FIREWALL_TABLE);
    assert!(!tables(pod.path()).contains(&FIREWALL_TABLE.to_owned()));
    h.engine.reconcile().expect("reconcile restores");
    assert!(tables(pod.path()).contains(&FIREWALL_TABLE.to_owned()));
    // bulkhead: the same namespace under another path and container id.
    with_second_path(pod.path(), |p| {
        let err = adopt(&h, "pod-b", p, "ctr-b").unwrap_err();
        assert_one_line_naming(&err, p, "\"pod-a\"");
        assert!(err.contains("ctr-a"), "{err}");
    });
    assert_eq!(h.engine.namespaces().len(), 1);
    assert!(tables(pod.path()).contains(&FIREWALL_TABLE.to_owned()));
}

/// A bind mount of `target` at `at` (made by the test, as a runtime would).
fn bind(target: &Path, at: &Path) {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(at)
        .expect("mount point");
    run(
        "mount",
        &["--bind", &target.to_string_lossy(), &at.to_string_lossy()],
    );
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(out.status.success(), "{cmd} {args:?}: {out:?}");
}

/// Unmounts and removes a mount point of [`bind`] on drop.
struct MountPoint(PathBuf);

impl Drop for MountPoint {
    fn drop(&mut self) {
        while Command::new("umount")
            .arg(&self.0)
            .output()
            .is_ok_and(|o| o.status.success())
        {}
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_bind_mount_swapped_after_adoption_redirects_nothing() {
    let Some(h) = Harness::new("adswap") else {
        return;
    };
    h.nat_network("n1", "10.62.3.0/24", None);
    let pod = runtime_netns("adswp");
    let path = MountPoint(PathBuf::from(format!(
        "/run/netns/{}-alias",
        testing::unique_name("adswp")
    )));
    bind(pod.path(), &path.0);
    adopt(&h, "pod", &path.0, "ctr-s").expect("adopt");
    endpoint(&h.engine, "a", "n1", "pod").expect("endpoint a");
    // The runtime's path now names the host namespace.
    run("umount", &[&path.0.to_string_lossy()]);
    bind(h.host(), &path.0);
    let host = h.host().to_path_buf();
    // Weakened: programming by path lands in the host; the old-named
    // firewall delete takes the switch table.
    delete_by_path(&*h.kernel, &path.0, LEGACY_FIREWALL_TABLE);
    assert!(!tables(&host).contains(&TABLE.to_owned()));
    let report = h.engine.reconcile().expect("reconcile");
    assert!(tables(&host).contains(&TABLE.to_owned()));
    assert!(
        report.errors.iter().any(|e| e.contains("not the adopted")),
        "reconcile refuses the swapped namespace: {:?}",
        report.errors
    );
    // bulkhead: nothing is programmed through the swapped path.
    let ports_before = h.kernel.link_names("bhp").expect("links");
    let err = endpoint(&h.engine, "b", "n1", "pod").unwrap_err();
    assert!(err.contains("not the adopted"), "{err}");
    // The delete needs no firewall change (reconcile left none programmed
    // there); when it does, it fails the same way. Its record goes.
    if let Err(e) = h.engine.delete_endpoint("a") {
        assert!(e.to_string().contains("not the adopted"), "{e}");
    }
    assert!(h.engine.endpoint("a").is_err(), "a's record is gone");
    assert!(tables(&host).contains(&TABLE.to_owned()));
    assert!(!tables(&host).contains(&FIREWALL_TABLE.to_owned()));
    let eth = Command::new("ip")
        .args(["-n", h.host_name(), "-o", "link", "show", "eth1"])
        .output()
        .expect("ip");
    assert!(!eth.status.success(), "no endpoint side made in the host");
    let ports_after = h.kernel.link_names("bhp").expect("links");
    assert!(ports_after.len() <= ports_before.len(), "{ports_after:?}");
}
