//! `bulkhead-bench podman`: the wall time of `podman run --rm ROOTFS
//! /bin/true` on a bulkhead network (`bulkhead-cni` and the real
//! `bulkheadd`), on Podman's default backend (netavark, bridge network) and
//! on the CNI bridge plugin (`bridge` + `host-local` + `portmap`, what the
//! CNI backend's default network chains first), in one run, alternating,
//! with medians and ratios.
//!
//! Everything runs inside the daemon's throwaway host namespace (`nsenter
//! --net=`, [`crate::daemon::Daemon`]): podman, its plugins, netavark and
//! the containers' veths. Podman gets private state in a temporary
//! directory (storage root, runroot, tmpdir, runc root, CNI and netavark
//! network directories, `CONTAINERS_CONF`), two configurations of it: the
//! CNI backend (bulkhead-cni and bridge networks) and the netavark backend
//! (one bridge network, DNS off as on Podman's default network). Containers
//! run from a busybox-static root filesystem (`--rootfs`), so no image is
//! pulled. The machine directories podman creates outside the private ones
//! (libcni's result cache, runc's state root, netavark's IPAM database)
//! are removed afterwards when they did not exist before.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::daemon::Daemon;
use crate::world::median;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `podman run --rm` per network (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
}

const BH_NET: &str = "bhbench";
const CNI_NET: &str = "bhcni";
const NAV_NET: &str = "bhnav";

/// Machine directories podman may create outside its private ones, and
/// the entries it leaves there (removed only if the directory was absent).
const MACHINE_DIRS: &[(&str, &[&str])] = &[
    ("/var/lib/cni", &["results", "networks"]),
    ("/run/runc", &[]),
    ("/run/containers/networks", &["ipam.db"]),
];

/// One podman configuration with private state.
struct Podman {
    dir: PathBuf,
    host: PathBuf,
    conf: PathBuf,
}

impl Podman {
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let t = &self.dir;
        let out = Command::new("nsenter")
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
            .env("CONTAINERS_CONF", &self.conf)
            .output()
            .map_err(|e| format!("run podman: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "podman {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Wall time of one `podman run --rm` of `/bin/true` on `network`, ms.
    fn run_rm(&self, rootfs: &Path, network: &str) -> Result<f64, String> {
        let root = rootfs.display().to_string();
        let t = Instant::now();
        self.run(&[
            "run",
            "--rm",
            "--network",
            network,
            "--rootfs",
            &root,
            "/bin/true",
        ])?;
        Ok(t.elapsed().as_secs_f64() * 1e3)
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// The root filesystem: busybox-static with `true`.
fn rootfs(dir: &Path) -> Result<PathBuf, String> {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).map_err(|e| format!("mkdir rootfs: {e}"))?;
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .map_err(|e| format!("copy /bin/busybox (apt-get install busybox-static): {e}"))?;
    for applet in ["true", "sh"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .map_err(|e| format!("symlink {applet}: {e}"))?;
    }
    Ok(root)
}

/// The CNI-backend and netavark-backend podman configurations.
fn configure(dir: &Path, host: &Path, socket: &Path) -> Result<(Podman, Podman), String> {
    for sub in ["plugins", "cni", "netavark", "ipam", "cnitmp", "navtmp"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("mkdir {sub}: {e}"))?;
    }
    let plugin = crate::clients::find("bulkhead-cni")?;
    std::os::unix::fs::symlink(&plugin.path, dir.join("plugins/bulkhead-cni"))
        .map_err(|e| format!("plugin link: {e}"))?;
    let bh = format!(
        r#"{{"cniVersion":"1.0.0","name":"{BH_NET}","plugins":[{{"type":"bulkhead-cni",
        "capabilities":{{"portMappings":true}},"bulkhead":{{"network":"{BH_NET}",
        "socket":"{}","driver":"nat","subnet":"10.97.0.0/16","gateway":"10.97.0.1"}}}}]}}"#,
        socket.display()
    );
    let bridge = format!(
        r#"{{"cniVersion":"1.0.0","name":"{CNI_NET}","plugins":[{{"type":"bridge",
        "bridge":"bhcni0","isGateway":true,"ipMasq":true,"hairpinMode":true,
        "ipam":{{"type":"host-local","dataDir":"{}","routes":[{{"dst":"0.0.0.0/0"}}],
        "ranges":[[{{"subnet":"10.98.0.0/16","gateway":"10.98.0.1"}}]]}}}},
        {{"type":"portmap","capabilities":{{"portMappings":true}}}}]}}"#,
        dir.join("ipam").display()
    );
    write(&dir.join(format!("cni/{BH_NET}.conflist")), &bh)?;
    write(&dir.join(format!("cni/{CNI_NET}.conflist")), &bridge)?;
    let conf = |backend: &str, tmp: &str, netdir: &str| {
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\ntmp_dir = \"{tmp}\"\n[network]\n\
             network_backend = \"{backend}\"\n\
             cni_plugin_dirs = [\"{plugins}\", \"/usr/lib/cni\"]\n\
             network_config_dir = \"{netdir}\"\n",
            tmp = dir.join(tmp).display(),
            plugins = dir.join("plugins").display(),
            netdir = dir.join(netdir).display(),
        )
    };
    write(&dir.join("cni.conf"), &conf("cni", "cnitmp", "cni"))?;
    write(
        &dir.join("netavark.conf"),
        &conf("netavark", "navtmp", "netavark"),
    )?;
    let make = |state: &str, conf: &str| Podman {
        dir: dir.join(state),
        host: host.to_path_buf(),
        conf: dir.join(conf),
    };
    let cni = make("cnistate", "cni.conf");
    let nav = make("navstate", "netavark.conf");
    for p in [&cni, &nav] {
        for sub in ["root", "runroot", "tmp", "runc"] {
            std::fs::create_dir_all(p.dir.join(sub)).map_err(|e| format!("mkdir {sub}: {e}"))?;
        }
    }
    nav.run(&[
        "network",
        "create",
        "--disable-dns",
        "--subnet",
        "10.99.0.0/16",
        NAV_NET,
    ])?;
    Ok((cni, nav))
}

pub fn run(args: &Args) -> Result<(), String> {
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    for (what, ok) in [
        (
            "podman",
            Command::new("podman").arg("--version").output().is_ok(),
        ),
        (
            "runc",
            Command::new("runc").arg("--version").output().is_ok(),
        ),
        (
            "/usr/lib/podman/netavark",
            Path::new("/usr/lib/podman/netavark").exists(),
        ),
        (
            "/usr/lib/cni/bridge",
            Path::new("/usr/lib/cni/bridge").exists(),
        ),
    ] {
        if !ok {
            return Err(format!(
                "{what} missing (apt-get install podman runc netavark containernetworking-plugins busybox-static)"
            ));
        }
    }
    let absent: Vec<&str> = MACHINE_DIRS
        .iter()
        .map(|(d, _)| *d)
        .filter(|d| !Path::new(d).exists())
        .collect();
    let result = measure(args.runs);
    for (dir, inside) in MACHINE_DIRS.iter().filter(|(d, _)| absent.contains(d)) {
        for entry in *inside {
            let path = Path::new(dir).join(entry);
            let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir(&path));
        }
        let _ = std::fs::remove_dir(dir);
    }
    let rows = result?;
    print(args.runs, &rows);
    Ok(())
}

type Rows = Vec<(&'static str, Vec<f64>)>;

fn measure(runs: usize) -> Result<Rows, String> {
    let d = Daemon::start(None)?;
    let tmp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let dir = tmp.path();
    let root = rootfs(dir)?;
    let (cni, nav) = configure(dir, d.host_path(), &d.socket())?;
    let kinds: [(&str, &Podman, &str); 3] = [
        ("bulkhead-cni (bulkheadd, nat)", &cni, BH_NET),
        ("netavark (bridge)", &nav, NAV_NET),
        ("CNI bridge + host-local + portmap", &cni, CNI_NET),
    ];
    // One warm-up each (first use makes bridges and networks), then the
    // kinds alternate so that the machine's drift hits them alike.
    for (_, p, net) in &kinds {
        p.run_rm(&root, net)?;
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); kinds.len()];
    for i in 0..runs {
        for k in 0..kinds.len() {
            let (_, p, net) = kinds[(i + k) % kinds.len()];
            times[(i + k) % kinds.len()].push(p.run_rm(&root, net)?);
        }
    }
    for p in [&cni, &nav] {
        let _ = p.run(&["rm", "-af", "-t", "0"]);
    }
    let _ = nav.run(&["network", "rm", "-f", NAV_NET]);
    Ok(kinds.iter().map(|(n, _, _)| *n).zip(times).collect())
}

fn print(runs: usize, rows: &Rows) {
    println!("`podman run --rm --rootfs ROOTFS /bin/true`, {runs} runs per network, alternating");
    println!("target: bulkhead-cni at least as fast as netavark and the CNI bridge plugin");
    println!();
    println!("| network | median | min | max | ÷ bulkhead-cni (median) |");
    println!("|:--|--:|--:|--:|--:|");
    let ours = median(&rows[0].1);
    for (name, t) in rows {
        let mut s = t.clone();
        s.sort_by(f64::total_cmp);
        let m = median(&s);
        println!(
            "| {name} | {m:.1} ms | {:.1} ms | {:.1} ms | {:.2}× |",
            s.first().copied().unwrap_or(0.0),
            s.last().copied().unwrap_or(0.0),
            m / ours
        );
    }
    println!();
    let plugin = crate::clients::find("bulkhead-cni")
        .map(|b| format!("{} build ({})", b.build, b.path.display()))
        .unwrap_or_else(|e| e);
    println!(
        "podman 4.3 (runc, cgroupfs, vfs storage, private state) in a throwaway host namespace; \
         bulkheadd: the release build next to this executable; bulkhead-cni: {plugin}."
    );
}
