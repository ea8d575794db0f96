//! `bulkhead-bench cli`: what a user of the command line waits for —
//! the `bulkhead` CLI's `namespace create` + `endpoint create` (and
//! `endpoint rm` + `namespace rm`) against a running `bulkheadd`, next to
//! netavark's `setup` (and `teardown`) with its namespace made and removed
//! by the caller, as podman does. Target (issue 16): bulkhead ≥ 5× faster.
//!
//! Both sides are timed from the first spawn to the last exit of a cycle,
//! one cycle at a time, alternating bulkhead and netavark cycle by cycle so
//! that the machine's load drifts over both alike. bulkhead: two spawns of
//! the release `bulkhead` binary (its static build when there is one:
//! [`crate::clients`]; `--socket` of a
//! [`crate::daemon::Daemon`] in its throwaway host namespace, one nat
//! network). netavark: the namespace made in-process (`unshare` + bind
//! mount, what `ip netns add` does minus its spawn: in netavark's favour),
//! then `nsenter --net=HOST netavark setup`, as in [`crate::peers`];
//! teardown is `netavark teardown` then the namespace's unmount. The spawn
//! floors (`bulkhead --version` twice; `nsenter … /bin/true` once) are
//! printed beside them: most of both sides is process start-up.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulkhead_api::{Client, NetworkSpec};
use bulkhead_dataplane::netns::NetnsGuard;

use crate::daemon::Daemon;
use crate::peers::{exec, host, netavark_json, NETAVARK};
use crate::world::quantile;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Create/delete cycles per side.
    #[arg(long, default_value_t = 40)]
    pub cycles: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `bulkhead --socket SOCK ARGS` to its exit; an error names the
/// command and what it printed.
fn cli(bin: &Path, socket: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(bin)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "bulkhead {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

struct Sides {
    bh_setup: Vec<f64>,
    bh_tear: Vec<f64>,
    nv_setup: Vec<f64>,
    nv_tear: Vec<f64>,
    cli_floor: Vec<f64>,
    nsenter_floor: Vec<f64>,
}

fn drive(bin: &Path, n: usize) -> Result<Sides, String> {
    crate::peers::check_installed()?;
    let d = Daemon::start(None)?;
    let sock = d.socket();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(Client::new(&sock).network_create(NetworkSpec {
        name: "bench".into(),
        driver: "nat".into(),
        subnets: vec!["10.200.0.0/16".into()],
        ..Default::default()
    }))
    .map_err(|e| format!("create nat network: {e}"))?;

    let nv_host = host("clinv")?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let cfg = dir.path().join("config");
    let cfg = cfg.to_str().ok_or("temp dir not UTF-8")?.to_owned();
    let netavark = |file: &Path, cmd: &str, ctr: &Path| -> Result<(), String> {
        let (file, ctr) = (
            file.to_str().ok_or("path not UTF-8")?,
            ctr.to_str().ok_or("path not UTF-8")?,
        );
        exec(
            nv_host.path(),
            NETAVARK,
            &["--config", &cfg, "-f", file, cmd, ctr],
            &[],
            None,
        )
        .map(drop)
    };
    // A keeper container holds netavark's bridge and firewall chains, so
    // no timed cycle builds or removes them (bulkhead's network holds its
    // bridge the same way).
    let keeper = NetnsGuard::create(&format!("bhb{}clinv-keep", std::process::id()))
        .map_err(|e| format!("create keeper namespace: {e}"))?;
    let keep_file = dir.path().join("keeper.json");
    std::fs::write(&keep_file, netavark_json("keeper", "10.201.255.250", false))
        .map_err(|e| format!("write {}: {e}", keep_file.display()))?;
    netavark(&keep_file, "setup", keeper.path())?;

    let mut s = Sides {
        bh_setup: Vec::with_capacity(n),
        bh_tear: Vec::with_capacity(n),
        nv_setup: Vec::with_capacity(n),
        nv_tear: Vec::with_capacity(n),
        cli_floor: Vec::with_capacity(n),
        nsenter_floor: Vec::with_capacity(n),
    };
    for i in 0..n {
        let (ns, ep) = (format!("c{i}"), format!("e{i}"));
        let t = Instant::now();
        cli(bin, &sock, &["namespace", "create", &ns])?;
        cli(
            bin,
            &sock,
            &[
                "endpoint",
                "create",
                &ep,
                "--network",
                "bench",
                "--namespace",
                &ns,
            ],
        )?;
        s.bh_setup.push(ms(t.elapsed()));
        let t = Instant::now();
        cli(bin, &sock, &["endpoint", "rm", &ep])?;
        cli(bin, &sock, &["namespace", "rm", &ns])?;
        s.bh_tear.push(ms(t.elapsed()));

        let file = dir.path().join(format!("c{i}.json"));
        std::fs::write(
            &file,
            netavark_json(&format!("bench{i:010}"), "10.201.0.2", false),
        )
        .map_err(|e| format!("write {}: {e}", file.display()))?;
        let t = Instant::now();
        let ctr = NetnsGuard::create(&format!("bhb{}clinv-c{i}", std::process::id()))
            .map_err(|e| format!("create container namespace: {e}"))?;
        netavark(&file, "setup", ctr.path())?;
        s.nv_setup.push(ms(t.elapsed()));
        let t = Instant::now();
        netavark(&file, "teardown", ctr.path())?;
        drop(ctr);
        s.nv_tear.push(ms(t.elapsed()));

        let t = Instant::now();
        for _ in 0..2 {
            let ok = Command::new(bin)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|st| st.success());
            if !ok {
                return Err(format!("{} --version failed", bin.display()));
            }
        }
        s.cli_floor.push(ms(t.elapsed()));
        s.nsenter_floor
            .push(exec(nv_host.path(), "/bin/true", &[], &[], None)?.0);
    }
    netavark(&keep_file, "teardown", keeper.path())?;
    Ok(s)
}

fn p50_p99(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (quantile(&s, 0.5), quantile(&s, 0.99))
}

pub fn run(args: &Args) -> Result<(), String> {
    let n = args.cycles;
    if n == 0 {
        return Err("--cycles must be at least 1".into());
    }
    let bin = crate::clients::find("bulkhead")?;
    let s = drive(&bin.path, n)?;
    let (bs, bt) = (p50_p99(&s.bh_setup), p50_p99(&s.bh_tear));
    println!("the CLI path: {n} cycles per side, alternating cycle by cycle; spawn to exit");
    println!("target: bulkhead CLI namespace create + endpoint create ≥ 5× faster than netavark setup (namespace made by the caller)");
    println!();
    println!("| side | setup p50 / p99 | teardown p50 / p99 | setup ÷ bulkhead (p50) | teardown ÷ bulkhead (p50) |");
    println!("|:--|--:|--:|--:|--:|");
    let row = |name: &str, setup: &[f64], tear: &[f64]| {
        let (a, b) = p50_p99(setup);
        let (c, d) = p50_p99(tear);
        println!(
            "| {name} | {a:.2} / {b:.2} ms | {c:.2} / {d:.2} ms | {:.1}× | {:.1}× |",
            a / bs.0,
            c / bt.0
        );
    };
    row(
        "bulkhead CLI: namespace create + endpoint create / endpoint rm + namespace rm",
        &s.bh_setup,
        &s.bh_tear,
    );
    row(
        "netavark 1.4: netns + setup / teardown + netns removal",
        &s.nv_setup,
        &s.nv_tear,
    );
    row(
        "(floor) two spawns of `bulkhead --version`",
        &s.cli_floor,
        &s.cli_floor,
    );
    row(
        "(floor) one spawn of `nsenter --net=HOST /bin/true`",
        &s.nsenter_floor,
        &s.nsenter_floor,
    );
    println!();
    println!(
        "bulkhead: release `bulkhead` CLI, {} build ({}), against the release `bulkheadd` (redb store, commit log fdatasync, state on $TMPDIR).",
        bin.build,
        bin.path.display()
    );
    println!("netavark: namespace made in-process (no `ip netns add` spawn), then `nsenter --net=HOST netavark setup`; DNS off.");
    Ok(())
}
