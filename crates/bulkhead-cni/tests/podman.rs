//! Podman, a real CNI client, on a bulkhead network (root only).
//!
//! Podman (CNI backend, runc, cgroupfs) runs real containers from a tiny
//! local root filesystem (busybox-static) through `bulkhead-cni`. Both
//! bulkheadd and podman run inside one throwaway host namespace (`nsenter
//! --net=`), so every veth lands there; podman gets a private
//! containers.conf (`CONTAINERS_CONF`), storage root, runroot and tmpdir in
//! a temporary directory. Set-up: docs/podman.md. Skips loudly when podman
//! is missing, and fails instead under `CI=true`.
//!
//! The traces on the machine podman cannot be told to avoid are libcni's
//! result cache (`/var/lib/cni/results`), containers/image's blob-info cache
//! (`/var/lib/containers/cache`, from `podman import`) and runc's state root
//! (`/run/runc`): the test removes each one that did not exist before.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bulkhead_testkit::probe::ProbeKind;
use common::{arrives_soon, Daemon};
use serde_json::json;

const NET: &str = "bhnet";
const BASE: &str = "bhbase";
const APPLETS: &[&str] = &[
    "sh", "nc", "ip", "ping", "wget", "httpd", "true", "cat", "sleep", "echo", "hostname",
];

fn podman_present() -> bool {
    let found = Command::new("podman").arg("--version").output().is_ok()
        && Command::new("runc").arg("--version").output().is_ok()
        && Path::new("/bin/busybox").exists();
    if !found {
        let msg = "podman, runc or busybox-static is missing (apt-get install podman runc \
                   busybox-static containernetworking-plugins)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}, and CI=true forbids skipping");
        }
        let line = format!("!!!!! SKIPPED (podman test): {msg} !!!!!\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    }
    found
}

/// Podman with private state, run inside the daemon's host namespace.
struct Podman {
    dir: tempfile::TempDir,
    host: PathBuf,
    /// Machine directories podman creates that did not exist before.
    absent: Vec<&'static str>,
}

/// Directories podman (CNI backend, `podman import`, runc) creates outside
/// the private ones given to it, and what it leaves in them: libcni's
/// result cache, containers/image's blob-info cache, runc's state root.
const MACHINE_DIRS: &[(&str, &[&str])] = &[
    ("/var/lib/cni", &["results", "networks"]),
    (
        "/var/lib/containers",
        &["cache/blob-info-cache-v1.boltdb", "cache"],
    ),
    ("/run/runc", &[]),
];

impl Podman {
    fn new(d: &Daemon) -> Podman {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = &dir.path().to_path_buf();
        let rootfs = t.join("rootfs");
        for sub in ["bin", "www", "plugins", "cni", "ipam", "tmp", "runc", "etc"] {
            let base = if matches!(sub, "bin" | "www" | "etc") {
                &rootfs
            } else {
                t
            };
            std::fs::create_dir_all(base.join(sub)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).expect("symlink");
        }
        std::fs::write(rootfs.join("www/index.html"), "hello from bulkhead\n").unwrap();
        std::fs::write(rootfs.join("pause"), "#!/bin/sh\nexec sleep 2147483647\n").unwrap();
        std::fs::set_permissions(
            rootfs.join("pause"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_bulkhead-cni"),
            t.join("plugins/bulkhead-cni"),
        )
        .expect("plugin link");
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": NET,
            "plugins": [{
                "type": "bulkhead-cni",
                "capabilities": { "portMappings": true },
                "bulkhead": {
                    "network": NET, "socket": d.socket(),
                    "driver": "nat", "subnet": "10.95.0.0/24", "gateway": "10.95.0.1"
                }
            }]
        });
        let base = json!({
            "cniVersion": "1.0.0",
            "name": BASE,
            "plugins": [{
                "type": "bridge", "bridge": "bhbase0", "isGateway": true, "ipMasq": false,
                "ipam": {
                    "type": "host-local", "dataDir": t.join("ipam"),
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "ranges": [[{ "subnet": "10.96.0.0/24", "gateway": "10.96.0.1" }]]
                }
            }, { "type": "portmap", "capabilities": { "portMappings": true } }]
        });
        for (name, c) in [(NET, conf), (BASE, base)] {
            std::fs::write(
                t.join("cni").join(format!("{name}.conflist")),
                c.to_string(),
            )
            .unwrap();
        }
        let cc = format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             tmp_dir = \"{tmp}\"\n[network]\nnetwork_backend = \"cni\"\n\
             cni_plugin_dirs = [\"{plugins}\", \"/usr/lib/cni\"]\nnetwork_config_dir = \"{cni}\"\n",
            tmp = t.join("tmp").display(),
            plugins = t.join("plugins").display(),
            cni = t.join("cni").display(),
        );
        std::fs::write(t.join("containers.conf"), cc).unwrap();
        let p = Podman {
            absent: MACHINE_DIRS
                .iter()
                .map(|(d, _)| *d)
                .filter(|d| !Path::new(d).exists())
                .collect(),
            host: d.host_path(),
            dir,
        };
        // The pod infra image: the same root filesystem, imported locally.
        let tar = t.join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
        p.ok(&[
            "import",
            "--change",
            "CMD=/pause",
            tar.to_str().unwrap(),
            "localhost/bhinfra",
        ]);
        p
    }

    fn rootfs(&self) -> String {
        self.dir.path().join("rootfs").display().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        let t = self.dir.path();
        Command::new("nsenter")
            .arg(format!("--net={}", self.host.display()))
            .arg("podman")
            .arg("--root")
            .arg(t.join("root"))
            .arg("--runroot")
            .arg(t.join("runroot"))
            .arg("--tmpdir")
            .arg(t.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--runtime", "runc", "--events-backend", "file"])
            .arg("--runtime-flag")
            .arg(format!("root={}", t.join("runc").display()))
            .args(args)
            .env("CONTAINERS_CONF", t.join("containers.conf"))
            .output()
            .expect("run podman")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Starts a detached container on `network` running `cmd`.
    fn start(&self, name: &str, extra: &[&str], cmd: &[&str]) -> String {
        let root = self.rootfs();
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--rootfs", &root]);
        args.extend_from_slice(cmd);
        self.ok(&args)
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, name])
    }

    fn ip_of(&self, name: &str) -> Ipv4Addr {
        let out = self.ok(&["exec", name, "ip", "-4", "-o", "addr", "show", "eth0"]);
        out.split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|c| c.split('/').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no address in {out:?}"))
    }

    /// Median wall time of `podman run --rm` of `true` on `network`.
    fn start_time(&self, network: &str, runs: usize) -> Duration {
        let root = self.rootfs();
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t0 = Instant::now();
                self.ok(&[
                    "run",
                    "--rm",
                    "--network",
                    network,
                    "--rootfs",
                    &root,
                    "/bin/true",
                ]);
                t0.elapsed()
            })
            .collect();
        times.sort();
        times[runs / 2]
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af", "-t", "0"]);
        let _ = self.run(&["pod", "rm", "-af", "-t", "0"]);
        let _ = self.run(&["rmi", "-af"]);
        // Only what we know podman leaves, and only in directories that did
        // not exist before: never a recursive removal of a machine path.
        for (dir, inside) in MACHINE_DIRS.iter().filter(|(d, _)| self.absent.contains(d)) {
            for entry in *inside {
                let path = Path::new(dir).join(entry);
                let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir(&path));
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// `GET /` over HTTP/1.0 from namespace `ns`; the whole response (or the error).
fn http_get(ns: &Path, to: &str) -> String {
    use std::io::{Read, Write};
    let to: std::net::SocketAddr = to.parse().expect("address");
    bulkhead_dataplane::netns::run_in(Some(ns), || -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .and_then(|r| r)
    .unwrap_or_else(|e| format!("error: {e}"))
}

#[test]
fn podman_runs_containers_and_pods_on_a_bulkhead_network() {
    if !podman_present() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    let p = Podman::new(&d);
    let net = ["--network", NET];
    // Two containers: addresses, and the default profile under real probes.
    let long = ["/bin/sleep", "600"];
    p.start("a", &net, &long);
    p.start("b", &net, &long);
    let (ipa, ipb) = (p.ip_of("a"), p.ip_of("b"));
    assert_ne!(ipa, ipb);
    assert_eq!(
        p.inspect(
            "a",
            &format!("{{{{.NetworkSettings.Networks.{NET}.IPAddress}}}}")
        ),
        ipa.to_string()
    );
    let nsa = PathBuf::from(p.inspect("a", "{{.NetworkSettings.SandboxKey}}"));
    let nsb = PathBuf::from(p.inspect("b", "{{.NetworkSettings.SandboxKey}}"));
    for kind in [ProbeKind::Tcp(7000), ProbeKind::Udp(7001), ProbeKind::Icmp] {
        assert!(arrives_soon(&nsa, &nsb, ipb, kind), "{kind:?} a->b");
        assert!(arrives_soon(&nsb, &nsa, ipa, kind), "{kind:?} b->a");
    }
    p.ok(&["exec", "a", "ping", "-c1", "-W2", &ipb.to_string()]);
    assert_eq!(d.api(d.client().endpoint_list()).unwrap().len(), 2);
    // A published port, reached from the (throwaway) host namespace.
    p.start(
        "web",
        &["--network", NET, "-p", "8080:80"],
        &["/bin/httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let until = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let got = http_get(&d.host_path(), "10.95.0.1:8080");
        if got.contains("hello from bulkhead") || Instant::now() > until {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.ends_with("hello from bulkhead\n"), "{body:?}");
    // A pod: two containers, one address, one localhost.
    p.ok(&[
        "pod",
        "create",
        "--name",
        "pod1",
        "--network",
        NET,
        "--infra-image",
        "localhost/bhinfra",
    ]);
    p.start(
        "srv",
        &["--pod", "pod1"],
        &["/bin/httpd", "-f", "-p", "127.0.0.1:9000", "-h", "/www"],
    );
    p.start("cli", &["--pod", "pod1"], &long);
    assert_eq!(p.ip_of("srv"), p.ip_of("cli"));
    let got = p.ok(&["exec", "cli", "wget", "-qO-", "http://127.0.0.1:9000/"]);
    assert_eq!(got, "hello from bulkhead");
    let pods = d
        .api(d.client().namespace_list())
        .unwrap()
        .into_iter()
        .filter(|n| n.adopted)
        .count();
    assert_eq!(pods, 4, "a, b, web and the pod's sandbox");
    // Start times, side by side.
    let runs = 10;
    let ours = p.start_time(NET, runs);
    let base = p.start_time(BASE, runs);
    let line = format!(
        "podman run --rm true, median of {runs}: bulkhead-cni {:.0} ms, CNI bridge {:.0} ms\n",
        ours.as_secs_f64() * 1e3,
        base.as_secs_f64() * 1e3
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    // Removal leaves nothing behind.
    p.ok(&["rm", "-f", "-t", "0", "a", "b", "web", "srv", "cli"]);
    p.ok(&["pod", "rm", "-f", "-t", "0", "pod1"]);
    assert!(
        d.api(d.client().endpoint_list()).unwrap().is_empty(),
        "{}",
        d.log()
    );
    assert!(d.api(d.client().namespace_list()).unwrap().is_empty());
    assert!(d.host_links("bhp").is_empty(), "{:?}", d.host_links("bhp"));
    assert!(!nsa.exists() && !nsb.exists(), "podman removed its netns");
}
