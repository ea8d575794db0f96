//! `bulkhead-bench fast-path`: the dataplane's floor under one routed
//! endpoint, over rtnetlink alone (no engine, no store, no nf_tables):
//! netns + veth with its peer made in the netns + host route + endpoint
//! lo/eth0 up + address + default route, N times (default 100) in a
//! throwaway host namespace, with p50/p90/p99 and the p50 of each phase.
//! ADR 0002 quotes it; the gap between this and `endpoints` is what the
//! engine, the store and the firewall add.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns::NetnsGuard;
use bulkhead_dataplane::rtnl::{Batch, Route, Rtnl, VethSpec};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Endpoints made (and kept until the end of the run).
    #[arg(long, default_value_t = 100)]
    count: u32,
}

const PHASES: [&str; 5] = [
    "netns",
    "veth",
    "host route",
    "open ep socket",
    "ep lo+addr+route",
];

/// `bhb-TAG-PID`: a name Ctrl-C's clean-up removes ([`crate::world`]).
fn name(tag: &str) -> String {
    format!("bhb-fp{tag}-{}", std::process::id())
}

pub fn run(args: &Args) -> Result<(), String> {
    let host = NetnsGuard::create(&name("host")).map_err(|e| e.to_string())?;
    let mut rtnl = Rtnl::in_netns(host.path()).map_err(|e| e.to_string())?;
    rtnl.execute(Batch::new().set_up("lo"))
        .map_err(|e| e.to_string())?;
    let mut total = Vec::new();
    let mut phases: [Vec<Duration>; 5] = Default::default();
    let mut guards = Vec::new();
    for i in 0..args.count {
        let port = format!("bhp{i:010x}");
        let start = Instant::now();
        let ep = NetnsGuard::create(&name(&format!("ep{i}"))).map_err(|e| e.to_string())?;
        let mut marks = vec![start, Instant::now()];
        endpoint(&mut rtnl, ep.path(), &port, i, &mut marks)
            .map_err(|e| format!("endpoint {port}: {e}"))?;
        total.push(start.elapsed());
        for (k, w) in marks.windows(2).enumerate() {
            phases[k].push(w[1] - w[0]);
        }
        guards.push(ep);
    }
    let p = |v: &mut Vec<Duration>, q: usize| {
        v.sort();
        v.get(v.len().saturating_sub(1) * q / 100)
            .map_or(0, Duration::as_micros)
    };
    let split: Vec<String> = phases
        .iter_mut()
        .zip(PHASES)
        .map(|(v, n)| format!("{n} {}", p(v, 50)))
        .collect();
    println!(
        "endpoint fast path over {} runs: p50 {} us, p90 {} us, p99 {} us (p50 us by phase: {})",
        total.len(),
        p(&mut total, 50),
        p(&mut total, 90),
        p(&mut total, 99),
        split.join(", ")
    );
    Ok(())
}

/// One endpoint; a mark after each phase.
fn endpoint(
    host: &mut Rtnl,
    ep: &Path,
    port: &str,
    i: u32,
    marks: &mut Vec<Instant>,
) -> Result<(), String> {
    let e = |e: bulkhead_dataplane::rtnl::RtnlError| e.to_string();
    // Hosts from .0.2 on: .0.1 is the gateway, and the count may pass 254.
    let nth = i + 2;
    let addr = IpAddr::from([10, 90, (nth >> 8) as u8, (nth & 0xff) as u8]);
    let veth = VethSpec {
        name: port,
        peer_name: "eth0",
        peer_netns: Some(ep),
        up: true,
        ..Default::default()
    };
    let found = host.execute_and_find(Batch::new().create_veth(&veth).map_err(e)?, &[port]);
    let pidx = found.map_err(e)?[0].as_ref().ok_or("veth gone")?.index;
    marks.push(Instant::now());
    host.execute(Batch::new().add_route(&Route::host(addr, pidx)))
        .map_err(e)?;
    marks.push(Instant::now());
    let mut ns = Rtnl::in_netns(ep).map_err(e)?;
    marks.push(Instant::now());
    let found = ns.execute_and_find(Batch::new().set_up("lo"), &["eth0"]);
    let eth0 = found.map_err(e)?[0].as_ref().ok_or("eth0 gone")?.index;
    let gateway = IpAddr::from([10, 90, 0, 1]);
    ns.execute(
        Batch::new()
            .set_up("eth0")
            .add_address(eth0, addr, 16)
            .add_route(&Route::default_via(gateway, eth0, true)),
    )
    .map_err(e)?;
    marks.push(Instant::now());
    Ok(())
}
