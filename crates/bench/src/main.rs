//! `bulkhead-bench`: benchmark commands that print tables. They measure and
//! report; they never gate anything on a clock.

#![forbid(unsafe_code)]

mod acl;
mod all;
mod cli_path;
mod clients;
mod cluster;
mod counters;
mod daemon;
mod daemon_load;
mod endpoints;
mod fastpath;
mod floor;
mod peers;
mod podman;
mod policy;
mod rng;
mod scale;
mod settle;
mod world;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bulkhead-bench",
    about = "bulkhead benchmarks (tables on stdout)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every table in one run, with a header naming the machine: peers,
    /// scale, daemon, acl, policy.
    All(all::Args),
    /// Clusters on etcd: convergence (create on one node until another
    /// node's probe gets through) and create latency under watch load.
    Cluster(cluster::Args),
    /// Policy engine: compile times, region counts, classifier verdict time,
    /// disagreement with the linear reference.
    Policy(policy::Args),
    /// Endpoint create/delete latency, total time and flatness for N
    /// endpoints on the real kernel (in a throwaway host namespace).
    Endpoints(endpoints::Args),
    /// The dataplane's floor under one routed endpoint: netns, veth, routes
    /// and addresses over rtnetlink alone, total and per phase.
    FastPath(fastpath::Args),
    /// The kernel's and the disk's own cost under one namespace and one
    /// endpoint (unshare, lo, first nf_tables table, veth, fdatasync).
    Floor(floor::Args),
    /// ACL updates (replace, add one, remove one) with N rules, and the
    /// data-path cost of N rules as ratios to no rules.
    Acl(acl::Args),
    /// The packet rate through an N-rule ACL with per-rule counters vs the
    /// same table without them, alternating.
    Counters(counters::Args),
    /// Endpoint setup/teardown latency next to netavark and the CNI bridge
    /// plugin (each in its own throwaway host namespace).
    Peers(peers::Args),
    /// N endpoints created one after another, total time and flatness, next
    /// to netavark and the CNI bridge plugin.
    Scale(scale::Args),
    /// The real bulkheadd's memory at rest and with N endpoints, and the
    /// create latency its API callers see (also with N concurrent clients).
    Daemon(daemon::Args),
    /// `podman run --rm` on a bulkhead-cni network next to netavark and the
    /// CNI bridge plugin, alternating, medians and ratios.
    Podman(podman::Args),
    /// The `bulkhead` CLI's namespace create + endpoint create against a
    /// running bulkheadd, next to netavark setup with its namespace.
    Cli(cli_path::Args),
}

fn main() {
    // As the service does: in-process figures are the daemon's.
    bulkhead_engine::heap::keep_compile_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(args) => policy::run(&args).map_err(|e| e.to_string()),
        Command::Cluster(args) => {
            world::install_ctrl_c();
            cluster::run(&args)
        }
        Command::Endpoints(args) => {
            world::install_ctrl_c();
            endpoints::run(&args)
        }
        Command::FastPath(args) => {
            world::install_ctrl_c();
            fastpath::run(&args)
        }
        Command::Acl(args) => {
            world::install_ctrl_c();
            acl::run(&args)
        }
        Command::Counters(args) => {
            world::install_ctrl_c();
            counters::run(&args)
        }
        Command::Peers(args) => {
            world::install_ctrl_c();
            peers::run(&args)
        }
        Command::Scale(args) => {
            world::install_ctrl_c();
            scale::run(&args)
        }
        Command::Daemon(args) => {
            world::install_ctrl_c();
            daemon::run(&args)
        }
        Command::Floor(args) => {
            world::install_ctrl_c();
            floor::run(&args)
        }
        Command::Cli(args) => {
            world::install_ctrl_c();
            cli_path::run(&args)
        }
        Command::Podman(args) => {
            world::install_ctrl_c();
            podman::run(&args)
        }
        Command::All(args) => {
            world::install_ctrl_c();
            all::run(&args)
        }
    };
    if let Err(e) = result {
        eprintln!("bulkhead-bench: {e}");
        std::process::exit(1);
    }
}
