//! `bulkhead-bench floor`: the kernel's and the disk's own cost under one
//! namespace create and one endpoint create, in-process, with nothing of
//! bulkhead's engine, store or API around it — the floor an API figure is
//! compared with where it misses a target (issue 16: "within 2× of the
//! floor").
//!
//! Per run, in a throwaway host namespace, one step after another on the
//! calling thread, each timed:
//! - `netns`: `unshare(CLONE_NEWNET)` + bind mount of the pin
//!   ([`bulkhead_dataplane::netns::create`]);
//! - `lo up`: an rtnetlink socket opened in it and `lo` set up;
//! - `nft socket + table`: an nf_tables socket opened in it and the first
//!   commit of a table with one base chain and one rule (the kernel's
//!   first-table work in a fresh namespace: hook registration);
//! - `veth + routes`: a veth pair with its peer in the new namespace, the
//!   host route, the peer's address and default route;
//! - `fdatasync`: 128 bytes appended to a file in `--dir` and synced
//!   (the store's commit log does one per operation, shared when
//!   concurrent).
//!
//! Floors (sums of step p50s): namespace create = netns + lo up, endpoint
//! create = nft table + veth + routes, each against one fdatasync. bulkhead
//! syncs its commit log while the kernel work runs (group commit), so an
//! operation's floor is the larger of its kernel part and the sync; the
//! sum (no overlap) is printed beside it.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use bulkhead_dataplane::netns::NetnsGuard;
use bulkhead_dataplane::nft::{
    Batch as NftBatch, Chain, ChainType, Expr, Family, Hook, NftSocket, Policy, Rule, Table,
    Verdict,
};
use bulkhead_dataplane::rtnl::{Batch, Route, Rtnl, VethSpec};

use crate::world::quantile;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs (each makes one namespace and one veth, kept until the end).
    #[arg(long, default_value_t = 100)]
    pub runs: u32,
    /// Directory whose disk the fdatasync step measures (default $TMPDIR,
    /// where `bulkhead-bench daemon` keeps the daemon's state).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const STEPS: [&str; 5] = [
    "netns (unshare + bind mount)",
    "lo up (rtnetlink socket in it)",
    "nft socket + first table commit",
    "veth + host route + address + default route",
    "fdatasync of a 128-byte append",
];

fn name(tag: &str) -> String {
    format!("bhb-fl{tag}-{}", std::process::id())
}

fn us(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}

pub fn run(args: &Args) -> Result<(), String> {
    let e = |e: bulkhead_dataplane::rtnl::RtnlError| e.to_string();
    let host = NetnsGuard::create(&name("host")).map_err(|e| e.to_string())?;
    let mut rtnl = Rtnl::in_netns(host.path()).map_err(e)?;
    rtnl.execute(Batch::new().set_up("lo")).map_err(e)?;
    let dir = match &args.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let mut log = std::fs::File::create(dir.path().join("floor.log"))
        .map_err(|e| format!("floor log: {e}"))?;
    let mut steps: [Vec<f64>; 5] = Default::default();
    let mut guards = Vec::new();
    for i in 0..args.runs {
        let t = Instant::now();
        let ns = NetnsGuard::create(&name(&format!("ep{i}"))).map_err(|e| e.to_string())?;
        steps[0].push(us(t));

        let t = Instant::now();
        let mut inner = Rtnl::in_netns(ns.path()).map_err(e)?;
        inner.execute(Batch::new().set_up("lo")).map_err(e)?;
        steps[1].push(us(t));

        let t = Instant::now();
        let table = Table::new(Family::Inet, "bulkhead");
        let mut b = NftBatch::new();
        b.add_table(&table)
            .add_chain(
                &table,
                &Chain::base("input", ChainType::Filter, Hook::Input, 0, Policy::Accept),
            )
            .add_rule(
                &table,
                &Rule::new("input", vec![Expr::Counter, Expr::Verdict(Verdict::Accept)]),
            );
        NftSocket::open(Some(ns.path()))
            .and_then(|mut s| s.commit(b))
            .map_err(|e| format!("nft: {e}"))?;
        steps[2].push(us(t));

        let t = Instant::now();
        let port = format!("bhf{i:010x}");
        // Hosts from .0.2 on: .0.1 is the gateway, and the count may pass 254.
        let nth = i + 2;
        let addr = IpAddr::from([10, 91, (nth >> 8) as u8, (nth & 0xff) as u8]);
        let veth = VethSpec {
            name: &port,
            peer_name: "eth0",
            peer_netns: Some(ns.path()),
            up: true,
            ..Default::default()
        };
        let found = rtnl.execute_and_find(Batch::new().create_veth(&veth).map_err(e)?, &[&port]);
        let pidx = found.map_err(e)?[0].as_ref().ok_or("veth gone")?.index;
        rtnl.execute(Batch::new().add_route(&Route::host(addr, pidx)))
            .map_err(e)?;
        let eth0 = inner
            .link_index("eth0")
            .map_err(e)?
            .ok_or("eth0 not in the namespace")?;
        inner
            .execute(
                Batch::new()
                    .set_up("eth0")
                    .add_address(eth0, addr, 16)
                    .add_route(&Route::default_via(
                        IpAddr::from([10, 91, 0, 1]),
                        eth0,
                        true,
                    )),
            )
            .map_err(e)?;
        steps[3].push(us(t));

        let t = Instant::now();
        log.write_all(&[0x42; 128])
            .and_then(|()| log.sync_data())
            .map_err(|e| format!("fdatasync: {e}"))?;
        steps[4].push(us(t));
        guards.push(ns);
    }
    let mut p50 = [0.0; 5];
    println!(
        "the floor under one namespace and one endpoint: {} runs, in-process, one step after another",
        args.runs
    );
    println!();
    println!("| step | p50 | p99 |");
    println!("|:--|--:|--:|");
    for (k, v) in steps.iter_mut().enumerate() {
        v.sort_by(f64::total_cmp);
        p50[k] = quantile(v, 0.5);
        println!(
            "| {} | {:.0} µs | {:.0} µs |",
            STEPS[k],
            p50[k],
            quantile(v, 0.99)
        );
    }
    println!();
    // bulkhead appends its commit record before the kernel work, and the
    // log's flusher syncs while that work runs: an answer waits for the
    // longer of the two, so the floor is their maximum, not their sum.
    let (ns_kernel, ep_kernel) = (p50[0] + p50[1], p50[2] + p50[3]);
    let sync = p50[4];
    let floor = |what: &str, parts: &str, kernel: f64| {
        println!(
            "floor of {what}: kernel ({parts}) {:.2} ms, fdatasync {:.2} ms; overlapped (max) {:.2} ms, one after the other {:.2} ms",
            kernel / 1e3,
            sync / 1e3,
            kernel.max(sync) / 1e3,
            (kernel + sync) / 1e3
        );
    };
    floor("a namespace create", "netns + lo up", ns_kernel);
    floor("an endpoint create", "nft table + veth + routes", ep_kernel);
    println!("fdatasync on the disk under {}", dir.path().display());
    Ok(())
}
