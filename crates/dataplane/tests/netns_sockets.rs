//! Namespace switching on the caller's thread, and the sockets the host
//! kernel keeps in the namespaces it made (root only).
//!
//! - `run_in` enters the namespace on the calling thread and always brings
//!   the thread back, also when the closure panics, and `netns::create`
//!   leaves the creating thread where it was.
//! - A namespace the kernel made keeps its sockets until `delete_netns`;
//!   then they are closed and the namespace really goes (a socket held in
//!   a namespace keeps it alive, devices and all). The weakened step holds
//!   such a socket itself and shows the namespace surviving its unpinning,
//!   so the final check can fail.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bulkhead_dataplane::host::HostKernel;
use bulkhead_dataplane::kernel::Kernel;
use bulkhead_dataplane::netns::{self, NetnsGuard};
use bulkhead_dataplane::rtnl::Rtnl;
use bulkhead_dataplane::sysctl;
use bulkhead_dataplane::testing::{require_root, unique_name};

/// Off (0) in a namespace bulkhead readied; the kernel's default is 1.
const LOOSE: &str = "net.netfilter.nf_conntrack_tcp_loose";

fn own_ns() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net")
        .expect("own ns")
        .ino()
}

fn ino(path: &Path) -> u64 {
    std::fs::metadata(path).expect("ns pin").ino()
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether link `name` exists in `ns`.
fn has_link(ns: &NetnsGuard, name: &str) -> bool {
    Rtnl::in_netns(ns.path())
        .expect("rtnl")
        .link_index(name)
        .expect("link index")
        .is_some()
}

/// Waits up to 10 s for `done`; whether it came.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Whether `name` vanishes from `ns` (the kernel frees a namespace on a
/// work queue).
fn vanishes(ns: &NetnsGuard, name: &str) -> bool {
    eventually(|| !has_link(ns, name))
}

#[test]
fn run_in_brings_the_thread_home_even_when_the_closure_panics() {
    if !require_root() {
        return;
    }
    let home = own_ns();
    let target = NetnsGuard::create(&unique_name("runin")).expect("netns");
    let inside = netns::run_in(Some(target.path()), own_ns).expect("run_in");
    assert_eq!(inside, ino(target.path()), "the closure ran in the target");
    assert_eq!(own_ns(), home, "back home after the call");
    let panicked = std::panic::catch_unwind(|| {
        netns::run_in(Some(target.path()), || panic!("deliberate")).ok()
    });
    assert!(panicked.is_err());
    assert_eq!(own_ns(), home, "back home after a panic inside");
    // Nested: the inner call returns to the outer namespace, not home.
    let other = NetnsGuard::create(&unique_name("runin2")).expect("netns");
    let (inner, after_inner) = netns::run_in(Some(target.path()), || {
        let inner = netns::run_in(Some(other.path()), own_ns).expect("inner");
        (inner, own_ns())
    })
    .expect("outer");
    assert_eq!(inner, ino(other.path()));
    assert_eq!(after_inner, ino(target.path()));
    assert_eq!(own_ns(), home);
    // Making a namespace leaves the thread where it was, too.
    let made = NetnsGuard::create(&unique_name("runin3")).expect("netns");
    assert_ne!(ino(made.path()), home);
    assert_eq!(own_ns(), home);
}

#[test]
fn a_deleted_namespace_goes_with_the_sockets_kept_in_it() {
    if !require_root() {
        return;
    }
    let host = NetnsGuard::create(&unique_name("kh")).expect("host ns");
    let watch = NetnsGuard::create(&unique_name("kw")).expect("watch ns");
    let kernel = HostKernel::open(Some(host.path())).expect("kernel");
    // A veth from the watch namespace into `ns`: its watch end goes when
    // `ns` is freed.
    let tie = |ns: &Path, end: &str| {
        ip(&[
            "-n",
            watch.name(),
            "link",
            "add",
            end,
            "type",
            "veth",
            "peer",
            "name",
            "in0",
            "netns",
            &ns.display().to_string(),
        ]);
    };

    // Weakened: a socket held in a namespace keeps it alive after unpinning.
    let name = unique_name("kx");
    let path = netns::create(&name).expect("netns");
    tie(&path, "wk0");
    let held = Rtnl::in_netns(&path).expect("socket in the namespace");
    netns::delete(&name).expect("unpin");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        has_link(&watch, "wk0"),
        "a held socket must keep the namespace (else this test proves nothing)"
    );
    drop(held);
    assert!(vanishes(&watch, "wk0"), "freed once the socket is closed");

    // bulkhead: the kernel keeps sockets while the namespace is its own…
    let name = unique_name("ko");
    let path = kernel.create_netns(&name).expect("create_netns");
    assert_eq!(kernel.kept_namespaces(), 1);
    tie(&path, "ko0");
    // …(loopback was brought up through the kept rtnetlink socket)…
    let listed = Command::new("ip")
        .args(["-n", &name, "link", "show", "lo"])
        .output()
        .expect("ip");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("UP"),
        "lo is up"
    );
    // …and lets the namespace go with delete_netns.
    kernel.delete_netns(&name).expect("delete_netns");
    assert_eq!(kernel.kept_namespaces(), 0);
    kernel.settle();
    assert!(
        vanishes(&watch, "ko0"),
        "the namespace outlived delete_netns: a kept socket still holds it"
    );
}

/// `create_with` runs its closure inside the namespace it just made and
/// then brings the thread home; the kernel's `create_netns` readies a new
/// namespace that way: strict TCP tracking is set in the new namespace
/// (default there is loose, 1), not in the host's or the caller's.
#[test]
fn a_new_namespace_is_readied_from_inside_it() {
    if !require_root() {
        return;
    }
    let home = own_ns();
    let name = unique_name("cw");
    let (path, inside) = netns::create_with(&name, own_ns).expect("create_with");
    let made = ino(&path);
    netns::delete(&name).expect("unpin");
    assert_eq!(inside, made, "the closure ran in the new namespace");
    assert_ne!(made, home);
    assert_eq!(own_ns(), home, "back home after create_with");

    let host = NetnsGuard::create(&unique_name("ch")).expect("host ns");
    let kernel = HostKernel::open(Some(host.path())).expect("kernel");
    let own_before = sysctl::read(None, LOOSE).ok();
    let name = unique_name("cr");
    let path = kernel.create_netns(&name).expect("create_netns");
    assert_eq!(own_ns(), home, "the creating thread is home");
    let in_new = sysctl::read(Some(&path), LOOSE).expect("read in the new namespace");
    let in_host = sysctl::read(Some(host.path()), LOOSE).expect("read in the host");
    kernel.delete_netns(&name).expect("delete_netns");
    assert_eq!(in_new, "0", "strict TCP tracking in the new namespace");
    assert_eq!(in_host, "1", "the host namespace keeps its default");
    assert_eq!(
        sysctl::read(None, LOOSE).ok(),
        own_before,
        "the caller's untouched"
    );
}

/// Whether `kernel`'s pool comes to hold `n` namespaces.
fn pool_fills(kernel: &HostKernel, n: usize) -> bool {
    eventually(|| kernel.warm_ready() >= n)
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

/// A namespace made ahead of its create is pinned under the asked name as
/// fresh as one made then: its own namespace (not the host's, the
/// caller's or another create's), loopback up, strict TCP tracking, its
/// sockets kept; the pool fills again; `delete_netns` lets it go like any
/// other (nothing of the pool holds it); dropping the kernel stops the
/// pool's thread.
#[test]
fn a_namespace_made_ahead_is_pinned_fresh_and_goes_with_delete() {
    if !require_root() {
        return;
    }
    let home = own_ns();
    let host = NetnsGuard::create(&unique_name("wh")).expect("host ns");
    let watch = NetnsGuard::create(&unique_name("ww")).expect("watch ns");
    let kernel = HostKernel::open(Some(host.path()))
        .and_then(|k| k.warm_namespaces(2))
        .expect("kernel with a pool");
    assert!(pool_fills(&kernel, 2), "the pool fills");

    let (a, b) = (unique_name("wa"), unique_name("wb"));
    let pa = kernel.create_netns(&a).expect("create from the pool");
    let pb = kernel.create_netns(&b).expect("create from the pool");
    assert_eq!(own_ns(), home, "the caller stays home");
    let (ia, ib) = (ino(&pa), ino(&pb));
    assert!(
        ia != ib && ia != home && ia != ino(host.path()) && ib != home,
        "each create pins a namespace of its own"
    );
    assert_eq!(kernel.kept_namespaces(), 2, "their sockets are kept");
    assert_eq!(sysctl::read(Some(&pa), LOOSE).expect("read"), "0");
    let lo = Command::new("ip")
        .args(["-n", &a, "link", "show", "lo"])
        .output()
        .expect("ip");
    assert!(String::from_utf8_lossy(&lo.stdout).contains("UP"), "lo up");
    assert!(pool_fills(&kernel, 2), "the pool fills again");

    // It goes with delete_netns (a veth tied to it vanishes from the
    // watch namespace once the kernel frees it).
    ip(&[
        "-n",
        watch.name(),
        "link",
        "add",
        "wa0",
        "type",
        "veth",
        "peer",
        "name",
        "in0",
        "netns",
        &pa.display().to_string(),
    ]);
    kernel.delete_netns(&a).expect("delete_netns");
    kernel.delete_netns(&b).expect("delete_netns");
    kernel.settle();
    assert!(
        vanishes(&watch, "wa0"),
        "a namespace from the pool outlived delete_netns"
    );

    assert!(thread_names().iter().any(|n| n == "bulkhead-warm-n"));
    drop(kernel);
    assert!(
        !thread_names().iter().any(|n| n == "bulkhead-warm-n"),
        "the pool's thread stops with the kernel"
    );
}
