//! `bulkhead-bench peers`: endpoint setup and teardown latency of bulkhead
//! next to its peers, netavark and the CNI bridge plugin (alone and chained
//! with portmap and firewall), with and without one published port.
//!
//! Each (peer, variant) runs in its own throwaway host namespace
//! (`bhb-<tag>-<pid>`), with its container namespaces pinned as
//! `bhb<pid><tag>-c<i>`; all are removed by name at the end, on an error
//! (guards) and on Ctrl-C (see [`crate::world`]). Nothing touches the
//! machine's own namespace.
//!
//! Fairness: every side gets its N container namespaces made beforehand,
//! untimed, and removed afterwards, untimed (the kernel's background
//! namespace cleanup would otherwise land on a timed operation); each cycle
//! uses a fresh one. Each side's bridge (and firewall chains) exist before
//! the first cycle: bulkhead makes its bridge with the network; the peers
//! get a "keeper" container attached first, so that netavark does not
//! remove its bridge on the last teardown and neither peer builds its
//! bridge inside a timed cycle. bulkhead is timed from the engine call to
//! its return (in-process, redb store with fsync); the peers from the spawn
//! of `nsenter --net=HOST PLUGIN` to its exit, which is how they run. The
//! spawn floor (`nsenter --net=HOST /bin/true`) is printed for reference.
//!
//! The same runs serve the scale table ([`crate::scale`]) in [`Mode::Fill`]:
//! N endpoints created one after another and kept, timed each, and removed
//! afterwards, untimed, with the namespaces they live in.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns::NetnsGuard;
use bulkhead_model::{EndpointSpec, NamespaceSpec, NetworkSpec};

use crate::world::{quantile, StoreKind, World};

pub(crate) const NETAVARK: &str = "/usr/lib/podman/netavark";
const CNI_DIR: &str = "/usr/lib/cni";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Setup/teardown cycles per peer and variant.
    #[arg(long, default_value_t = 200)]
    pub cycles: usize,
}

/// How a side's N endpoints are driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Setup then teardown in each fresh container namespace, one at a time.
    Cycles,
    /// N setups one after another, all kept (no teardown timed); everything
    /// goes with the namespaces at the end.
    Fill,
}

pub struct Row {
    pub peer: &'static str,
    pub variant: &'static str,
    /// Whether the variant publishes one port (picks bulkhead's row to
    /// compare with).
    pub port: bool,
    /// Setup times in order, ms.
    pub setup: Vec<f64>,
    /// Teardown times in order, ms (empty in [`Mode::Fill`]).
    pub teardown: Vec<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pid() -> u32 {
    std::process::id()
}

/// A throwaway host namespace with `lo` up.
pub fn host(tag: &str) -> Result<NetnsGuard, String> {
    let h = NetnsGuard::create(&format!("bhb-{tag}-{}", pid()))
        .map_err(|e| format!("create host namespace: {e}"))?;
    crate::world::run(&["-n", h.name(), "link", "set", "lo", "up"])?;
    Ok(h)
}

/// `n` container namespaces for `tag` (`bhb<pid><tag>-c<i>`).
fn containers(tag: &str, n: usize) -> Result<Vec<NetnsGuard>, String> {
    (0..n)
        .map(|i| {
            NetnsGuard::create(&format!("bhb{}{tag}-c{i}", pid()))
                .map_err(|e| format!("create container namespace: {e}"))
        })
        .collect()
}

/// Runs `nsenter --net=HOST PROG ARGS` with `env` and `stdin`; returns the
/// wall time from spawn to exit (ms) and stdout.
pub(crate) fn exec(
    host: &Path,
    prog: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Result<(f64, String), String> {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", host.display()))
        .arg(prog)
        .args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawn {prog}: {e}"))?;
    if let (Some(s), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(s.as_bytes())
            .map_err(|e| format!("write to {prog}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wait for {prog}: {e}"))?;
    let elapsed = ms(t.elapsed());
    if !out.status.success() {
        return Err(format!(
            "{prog} {}: {} {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    Ok((elapsed, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// bulkhead's side: the engine in-process on a redb store, a nat network.
/// bulkhead's world for `n` endpoints: one nat network `bench`
/// (10.200.0.0/16) and the namespaces `c0`… `c<n-1>`, made untimed.
pub(crate) fn bulkhead_world(tag: &str, n: usize) -> Result<World, String> {
    let world = World::new(tag, StoreKind::Redb)?;
    let e = &world.engine;
    e.create_network(NetworkSpec {
        name: "bench".into(),
        driver: "nat".into(),
        subnets: vec!["10.200.0.0/16".into()],
        ..Default::default()
    })
    .map_err(|e| format!("create nat network: {e}"))?;
    for i in 0..n {
        e.create_namespace(NamespaceSpec {
            name: format!("c{i}"),
            isolation: None,
            ..NamespaceSpec::default()
        })
        .map_err(|e| format!("create namespace c{i}: {e}"))?;
    }
    Ok(world)
}

pub fn bulkhead(cycles: usize, port: bool, mode: Mode) -> Result<Row, String> {
    let tag = match (mode, port) {
        (Mode::Fill, _) => "sb",
        (Mode::Cycles, false) => "pb",
        (Mode::Cycles, true) => "pbp",
    };
    let world = bulkhead_world(tag, cycles)?;
    let e = &world.engine;
    let (mut setup, mut teardown) = (Vec::new(), Vec::new());
    for i in 0..cycles {
        let spec = EndpointSpec {
            name: format!("e{i}"),
            network: "bench".into(),
            namespace: format!("c{i}"),
            publish: if port {
                vec!["8080:80".into()]
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let t = Instant::now();
        e.create_endpoint(spec)
            .map_err(|e| format!("create endpoint e{i}: {e}"))?;
        setup.push(ms(t.elapsed()));
        if mode == Mode::Fill {
            continue;
        }
        let t = Instant::now();
        e.delete_endpoint(&format!("e{i}"))
            .map_err(|e| format!("delete endpoint e{i}: {e}"))?;
        teardown.push(ms(t.elapsed()));
    }
    if mode == Mode::Fill {
        // The world's drop removes the namespaces and the host (and every
        // link with them).
        return Ok(Row {
            peer: "bulkhead",
            variant: "nat",
            port,
            setup,
            teardown,
        });
    }
    for i in 0..cycles {
        e.delete_namespace(&format!("c{i}"))
            .map_err(|e| format!("delete namespace c{i}: {e}"))?;
    }
    Ok(Row {
        peer: "bulkhead",
        variant: if port { "nat, 1 port" } else { "nat" },
        port,
        setup,
        teardown,
    })
}

/// The `i`-th container address of a peer's /16 (`10.<b>.0.2` on).
fn peer_ip(b: u8, i: usize) -> String {
    let host = u32::try_from(i + 2).unwrap_or(u32::MAX);
    format!("10.{b}.{}.{}", (host >> 8) & 0xff, host & 0xff)
}

/// netavark's options file for container `id` at `ip`.
pub(crate) fn netavark_json(id: &str, ip: &str, port: bool) -> String {
    let ports = if port {
        r#""port_mappings":[{"host_ip":"","container_port":80,"host_port":8080,"range":1,"protocol":"tcp"}],"#
    } else {
        ""
    };
    format!(
        r#"{{"container_id":"{id}","container_name":"{id}",{ports}
 "networks":{{"benchnet":{{"interface_name":"eth0","static_ips":["{ip}"]}}}},
 "network_info":{{"benchnet":{{"name":"benchnet","id":"{netid}","driver":"bridge",
   "network_interface":"nvbr0","subnets":[{{"subnet":"10.201.0.0/16","gateway":"10.201.0.1"}}],
   "ipv6_enabled":false,"internal":false,"dns_enabled":false,
   "ipam_options":{{"driver":"host-local"}}}}}}}}"#,
        netid = "b".repeat(64),
    )
}

/// netavark's side, in its own host namespace.
pub fn netavark(cycles: usize, port: bool, mode: Mode) -> Result<Row, String> {
    let tag = match (mode, port) {
        (Mode::Fill, _) => "snv",
        (Mode::Cycles, false) => "nv",
        (Mode::Cycles, true) => "nvp",
    };
    let h = host(tag)?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let cfg = dir.path().join("config");
    let cfg = cfg.to_str().ok_or("temp dir not UTF-8")?;
    let run = |file: &Path, cmd: &str, ctr: &Path| -> Result<f64, String> {
        let (file, ctr) = (
            file.to_str().ok_or("path not UTF-8")?,
            ctr.to_str().ok_or("path not UTF-8")?,
        );
        exec(
            h.path(),
            NETAVARK,
            &["--config", cfg, "-f", file, cmd, ctr],
            &[],
            None,
        )
        .map(|(t, _)| t)
    };
    let keeper = NetnsGuard::create(&format!("bhb{}{tag}-keep", pid()))
        .map_err(|e| format!("create keeper namespace: {e}"))?;
    let keep_file = dir.path().join("keeper.json");
    std::fs::write(&keep_file, netavark_json("keeper", "10.201.255.250", false))
        .map_err(|e| format!("write {}: {e}", keep_file.display()))?;
    run(&keep_file, "setup", keeper.path())?;
    let ctrs = containers(tag, cycles)?;
    let (mut setup, mut teardown) = (Vec::new(), Vec::new());
    for (i, c) in ctrs.iter().enumerate() {
        let file = dir.path().join(format!("c{i}.json"));
        let ip = match mode {
            Mode::Cycles => peer_ip(201, 0),
            Mode::Fill => peer_ip(201, i),
        };
        std::fs::write(&file, netavark_json(&format!("bench{i:010}"), &ip, port))
            .map_err(|e| format!("write {}: {e}", file.display()))?;
        setup.push(run(&file, "setup", c.path())?);
        if mode == Mode::Cycles {
            teardown.push(run(&file, "teardown", c.path())?);
        }
    }
    if mode == Mode::Cycles {
        run(&keep_file, "teardown", keeper.path())?;
    }
    drop(ctrs);
    Ok(Row {
        peer: "netavark",
        variant: if port { "bridge, 1 port" } else { "bridge" },
        port,
        setup,
        teardown,
    })
}

/// The plugins of a CNI chain, each as a JSON object body without its
/// closing brace (name, cniVersion and prevResult are added per call).
fn cni_plugins(data_dir: &str, chain: bool, port: bool) -> Vec<String> {
    let mut v = vec![format!(
        r#"{{"type":"bridge","bridge":"cnibr0","isGateway":true,"ipMasq":true,"hairpinMode":true,
 "ipam":{{"type":"host-local","dataDir":"{data_dir}",
   "ranges":[[{{"subnet":"10.202.0.0/16","gateway":"10.202.0.1"}}]],
   "routes":[{{"dst":"0.0.0.0/0"}}]}}"#
    )];
    if chain {
        let mappings = if port {
            r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"}"#
        } else {
            ""
        };
        v.push(format!(
            r#"{{"type":"portmap","capabilities":{{"portMappings":true}},"snat":true,
 "runtimeConfig":{{"portMappings":[{mappings}]}}"#
        ));
        v.push(r#"{"type":"firewall""#.to_string());
    }
    v
}

/// One plugin's stdin: `body` with the network's name and version, and
/// `prev` as prevResult if any.
fn cni_conf(body: &str, prev: Option<&str>) -> String {
    let mut s = format!(r#"{body},"cniVersion":"1.0.0","name":"benchcni""#);
    if let Some(p) = prev {
        s.push_str(r#","prevResult":"#);
        s.push_str(p.trim());
    }
    s.push('}');
    s
}

/// Runs the chain's ADD (in order, each given the previous result) or DEL
/// (in reverse, each given the final ADD result); returns the total time
/// and the final result.
fn cni_run(
    host: &Path,
    plugins: &[String],
    cmd: &str,
    id: &str,
    ctr: &Path,
    add_result: Option<&str>,
) -> Result<(f64, String), String> {
    let ctr = ctr.to_str().ok_or("path not UTF-8")?;
    let env = [
        ("CNI_COMMAND", cmd),
        ("CNI_CONTAINERID", id),
        ("CNI_NETNS", ctr),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", CNI_DIR),
    ];
    let (mut total, mut prev) = (0.0, add_result.map(str::to_owned));
    let order: Vec<&String> = if cmd == "DEL" {
        plugins.iter().rev().collect()
    } else {
        plugins.iter().collect()
    };
    for body in order {
        let ty = body
            .split(r#""type":""#)
            .nth(1)
            .and_then(|s| s.split('"').next())
            .ok_or("plugin without type")?;
        let prog = format!("{CNI_DIR}/{ty}");
        let conf = cni_conf(body, prev.as_deref());
        let (t, out) = exec(host, &prog, &[], &env, Some(&conf))?;
        total += t;
        if cmd == "ADD" {
            prev = Some(out);
        }
    }
    Ok((total, prev.unwrap_or_default()))
}

/// The CNI side (bridge alone, or chained with portmap and firewall), in
/// its own host namespace.
pub fn cni(cycles: usize, chain: bool, port: bool, mode: Mode) -> Result<Row, String> {
    let tag = match (mode, chain, port) {
        (Mode::Fill, _, _) => "scni",
        (Mode::Cycles, false, _) => "cni",
        (Mode::Cycles, true, false) => "cnc",
        (Mode::Cycles, true, true) => "cncp",
    };
    let h = host(tag)?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let data = dir.path().to_str().ok_or("temp dir not UTF-8")?;
    let plugins = cni_plugins(data, chain, port);
    let keep_plugins = cni_plugins(data, chain, false);
    let keeper = NetnsGuard::create(&format!("bhb{}{tag}-keep", pid()))
        .map_err(|e| format!("create keeper namespace: {e}"))?;
    let (_, keep_result) = cni_run(
        h.path(),
        &keep_plugins,
        "ADD",
        "keeper",
        keeper.path(),
        None,
    )?;
    let ctrs = containers(tag, cycles)?;
    let (mut setup, mut teardown) = (Vec::new(), Vec::new());
    for (i, c) in ctrs.iter().enumerate() {
        let id = format!("bench{i:010}");
        let (t, result) = cni_run(h.path(), &plugins, "ADD", &id, c.path(), None)?;
        setup.push(t);
        if mode == Mode::Cycles {
            let (t, _) = cni_run(h.path(), &plugins, "DEL", &id, c.path(), Some(&result))?;
            teardown.push(t);
        }
    }
    if mode == Mode::Cycles {
        cni_run(
            h.path(),
            &keep_plugins,
            "DEL",
            "keeper",
            keeper.path(),
            Some(&keep_result),
        )?;
    }
    drop(ctrs);
    Ok(Row {
        peer: "CNI",
        variant: match (chain, port) {
            (false, _) => "bridge",
            (true, false) => "bridge+portmap+firewall",
            (true, true) => "bridge+portmap+firewall, 1 port",
        },
        port,
        setup,
        teardown,
    })
}

/// `nsenter --net=HOST /bin/true`, timed: the floor under every peer's
/// numbers (one process spawn through nsenter).
fn spawn_floor(cycles: usize) -> Result<Row, String> {
    let h = host("spawn")?;
    let mut t = Vec::new();
    for _ in 0..cycles {
        t.push(exec(h.path(), "/bin/true", &[], &[], None)?.0);
    }
    Ok(Row {
        peer: "(spawn floor)",
        variant: "nsenter + /bin/true",
        port: false,
        setup: t.clone(),
        teardown: t,
    })
}

/// Errors unless the peers' binaries are installed.
pub fn check_installed() -> Result<(), String> {
    for bin in [
        NETAVARK.to_string(),
        format!("{CNI_DIR}/bridge"),
        format!("{CNI_DIR}/portmap"),
        format!("{CNI_DIR}/firewall"),
    ] {
        if !Path::new(&bin).exists() {
            return Err(format!(
                "{bin} missing (apt-get install netavark containernetworking-plugins, or run bench/run)"
            ));
        }
    }
    Ok(())
}

pub fn run(args: &Args) -> Result<(), String> {
    if args.cycles == 0 {
        return Err("--cycles must be at least 1".into());
    }
    check_installed()?;
    let n = args.cycles;
    let c = Mode::Cycles;
    type Job = Box<dyn Fn() -> Result<Row, String>>;
    let jobs: Vec<Job> = vec![
        Box::new(move || bulkhead(n, false, c)),
        Box::new(move || bulkhead(n, true, c)),
        Box::new(move || netavark(n, false, c)),
        Box::new(move || netavark(n, true, c)),
        Box::new(move || cni(n, false, false, c)),
        Box::new(move || cni(n, true, false, c)),
        Box::new(move || cni(n, true, true, c)),
        Box::new(move || spawn_floor(n)),
    ];
    let mut rows = Vec::new();
    for job in jobs {
        rows.push(job()?);
        // Let the kernel's background namespace cleanup of the row just
        // timed finish before the next row is timed (it holds the RTNL
        // lock every link change takes).
        crate::settle::namespaces(
            Duration::from_secs(60),
            Duration::from_millis(500 + 5 * n as u64),
        );
    }
    let stats = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        (quantile(&s, 0.5), quantile(&s, 0.99))
    };
    println!("endpoint setup/teardown, {n} cycles each, a fresh container namespace per cycle");
    println!("target: bulkhead setup p50 ≤ 2 ms, p99 ≤ 10 ms, ≥ 10× faster than each peer; teardown p50 ≤ 2 ms");
    println!();
    println!(
        "| {:<13} | {:<31} | {:>9} | {:>9} | {:>9} | {:>9} | {:>15} | {:>15} |",
        "peer",
        "variant",
        "setup50",
        "setup99",
        "tear50",
        "tear99",
        "setup ÷ bh 50/99",
        "tear ÷ bh 50/99"
    );
    println!(
        "|:--------------|:--------------------------------|----------:|----------:|----------:|----------:|----------------:|----------------:|"
    );
    for r in &rows {
        let (s50, s99) = stats(&r.setup);
        let (t50, t99) = stats(&r.teardown);
        let base = rows
            .iter()
            .find(|b| b.peer == "bulkhead" && b.port == r.port);
        let (bs, bt) = match base {
            Some(b) => (stats(&b.setup), stats(&b.teardown)),
            None => ((f64::NAN, f64::NAN), (f64::NAN, f64::NAN)),
        };
        println!(
            "| {:<13} | {:<31} | {:>6.2} ms | {:>6.2} ms | {:>6.2} ms | {:>6.2} ms | {:>6.1} / {:>6.1} | {:>6.1} / {:>6.1} |",
            r.peer,
            r.variant,
            s50,
            s99,
            t50,
            t99,
            s50 / bs.0,
            s99 / bs.1,
            t50 / bt.0,
            t99 / bt.1,
        );
    }
    println!();
    println!(
        "bulkhead: engine call to return, in-process, redb store (fsync); no process spawned."
    );
    println!(
        "peers: spawn of `nsenter --net=HOST PLUGIN` to exit (CNI chain: sum of its plugins)."
    );
    println!("ratios: peer ÷ bulkhead with the same number of published ports (0 or 1).");
    Ok(())
}
