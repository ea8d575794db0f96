//! `bulkhead demo`: the whole tour on one machine, as root, with no set-up
//! (spec §8). It starts bulkheadd's service in-process
//! ([`bulkheadd::embedded`]) inside a throwaway host namespace on a
//! temporary store and socket, so the machine's own network and any running
//! bulkheadd are never touched, and then drives it like any client: every
//! step is a `bulkhead` command line, parsed and sent over the API as the
//! CLI would. It creates a nat network and two endpoints, sends real probes
//! for each protocol class both ways, prints the verdict matrix with the
//! enforcement point and rule `trace` names for each cell (and whether the
//! kernel agreed), shows a custom ACL taking effect, and removes everything
//! — also when a step fails. With `--vm` it then adds a vm endpoint with a
//! real QEMU guest next to a process endpoint ([`vm`]); the tools that
//! needs are checked before anything is made, and a missing one is named
//! in one line with its Debian package.

mod vm;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use bulkhead_api::{Client, Response, TraceResult};
use bulkheadd::embedded::{Embedded, ProbeKind};
use clap::Parser;

use crate::cli::Cli;
use crate::commands::{plan, Plan};

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo needs root: it creates network namespaces (run it with sudo)")]
    NotRoot,
    #[error("demo: {0}")]
    Step(String),
    #[error("demo --vm: {0}")]
    Guest(bulkhead_guest::GuestError),
}

fn step<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, DemoError> {
    r.map_err(|e| DemoError::Step(format!("{what}: {e}")))
}

/// The probes of the matrix: one per protocol class of spec §4.
const PROBES: [(&str, ProbeKind); 7] = [
    ("tcp/80", ProbeKind::Tcp(80)),
    ("udp/53", ProbeKind::Udp(53)),
    ("icmp", ProbeKind::Icmp),
    ("igmp", ProbeKind::Raw(2)),
    ("gre", ProbeKind::Raw(47)),
    ("sctp", ProbeKind::Raw(132)),
    ("proto 253", ProbeKind::Raw(253)),
];

struct Side {
    name: String,
    ip: Ipv4Addr,
    netns: PathBuf,
}

/// The service and a client of it.
struct Tour {
    service: Embedded,
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl Tour {
    /// Runs `bulkhead ARGS` against the service: parsed and planned as the
    /// CLI does, sent over the API; the response.
    fn call(&self, args: &[&str]) -> Result<Response, DemoError> {
        let what = args[..2].join(" ");
        let cli = step(&what, Cli::try_parse_from(["bulkhead"].iter().chain(args)))?;
        let Plan::Api(cmd) = step(&what, plan(cli.command))? else {
            return Err(DemoError::Step(format!("{what}: not an API command")));
        };
        step(&what, self.runtime.block_on(self.client.execute(&cmd)))
    }

    /// One cell: what the kernel did, what trace says, and who decided.
    fn cell(&self, from: &Side, to: &Side, kind: ProbeKind) -> Result<(String, bool), DemoError> {
        let arrived = step(
            "probe",
            self.service
                .probe(&from.netns, from.ip, &to.netns, to.ip, kind),
        )?;
        let protocol = kind.protocol().to_string();
        let port = kind.port().map(|p| p.to_string());
        let mut args = vec!["trace", "--from", &from.name, "--to", &to.name];
        args.extend(["--protocol", &protocol]);
        if let Some(p) = &port {
            args.extend(["--port", p]);
        }
        let Response::Trace(t) = self.call(&args)? else {
            return Err(DemoError::Step("trace: unexpected response".into()));
        };
        let observed = if arrived { "allow" } else { "block" };
        let agree = arrived == (t.verdict == "allow");
        Ok((
            format!(
                "{observed:<5} {}{}",
                decider(&t),
                if agree { "" } else { "  (trace disagrees!)" }
            ),
            agree,
        ))
    }

    fn matrix(&self, a: &Side, b: &Side) -> Result<bool, DemoError> {
        let head_ab = format!("{} -> {}", a.name, b.name);
        println!("  {:<10} {:<58} {} -> {}", "PROBE", head_ab, b.name, a.name);
        let mut all_agree = true;
        for (label, kind) in PROBES {
            let (ab, ok1) = self.cell(a, b, kind)?;
            let (ba, ok2) = self.cell(b, a, kind)?;
            all_agree &= ok1 && ok2;
            println!("  {label:<10} {ab:<58} {ba}");
        }
        Ok(all_agree)
    }

    fn run(&self) -> Result<bool, DemoError> {
        let args = ["network", "create", "demo", "--driver", "nat"];
        let Response::Network(network) = self.call(&[&args[..], &["--subnet", SUBNET]].concat())?
        else {
            return Err(DemoError::Step(
                "create network: unexpected response".into(),
            ));
        };
        println!(
            "network demo: nat, subnet {}, gateway {}",
            network.subnets.join(", "),
            network.gateway.as_deref().unwrap_or("-")
        );
        let mut sides = Vec::new();
        for (ep, ns) in [("client", "alpha"), ("web", "beta")] {
            let Response::Namespace(namespace) = self.call(&["namespace", "create", ns])? else {
                return Err(DemoError::Step(
                    "create namespace: unexpected response".into(),
                ));
            };
            let mut args = vec!["endpoint", "create", ep, "--network", "demo"];
            args.extend(["--namespace", ns]);
            if ep == "web" {
                args.extend(["--publish", "8080:80"]);
            }
            let Response::Endpoint(e) = self.call(&args)? else {
                return Err(DemoError::Step(
                    "create endpoint: unexpected response".into(),
                ));
            };
            println!(
                "endpoint {ep}: {} in namespace {ns} (compartment {}), switch port {}",
                e.ip_address, namespace.compartment_id, e.switch_port
            );
            let ip = e.ip_address.split('/').next().unwrap_or_default();
            sides.push(Side {
                name: ep.to_owned(),
                ip: step("endpoint address", ip.parse::<Ipv4Addr>())?,
                netns: namespace.netns_path.map(PathBuf::from).ok_or_else(|| {
                    DemoError::Step(format!("namespace {ns}: no network namespace"))
                })?,
            });
        }
        let (client, web) = (&sides[0], &sides[1]);
        println!("\nverdict matrix, default profile `current` (real packets; the deciding point and rule from trace):");
        let mut agree = self.matrix(client, web)?;
        let rule = format!(
            "acl add web --direction in --action block --protocol tcp --local-ports 80 \
             --remote-addresses {} --id deny-client-web",
            client.ip
        );
        let args: Vec<&str> = rule.split(' ').collect();
        self.call(&[&args[..], &["--priority", "100"]].concat())?;
        println!("\nafter `{rule}`:");
        agree &= self.matrix(client, web)?;
        Ok(agree)
    }

    /// Deletes what the tour made, best effort (the service removes the
    /// rest when it stops).
    fn teardown(&self) {
        for e in ["client", "web"] {
            let _ = self.call(&["endpoint", "rm", e]);
        }
        for n in ["alpha", "beta"] {
            let _ = self.call(&["namespace", "rm", n]);
        }
        let _ = self.call(&["network", "rm", "demo"]);
    }
}

const SUBNET: &str = "10.201.0.0/24";

/// The step that decided, as `trace` names it: the first that blocked, else
/// the last enforcement point, else the last step.
fn decider(t: &TraceResult) -> String {
    let point = |h: &&bulkhead_api::TraceHop| {
        matches!(h.stage.as_str(), "source_point" | "destination_point")
    };
    t.hops
        .iter()
        .find(|h| h.verdict == "block")
        .or_else(|| t.hops.iter().rev().find(point))
        .or(t.hops.last())
        .map_or_else(
            || "no enforcement point".to_owned(),
            |h| format!("{} {}: {}", h.point, h.location, h.rule),
        )
}

/// Runs the tour; with `vm`, also the vm endpoint section.
pub fn run(with_vm: bool) -> Result<(), DemoError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(DemoError::NotRoot);
    }
    if with_vm {
        bulkhead_guest::check_host().map_err(DemoError::Guest)?;
    }
    let pid = std::process::id();
    let state = std::env::temp_dir().join(format!("bulkhead-demo-{pid}"));
    let service = step(
        "start the service",
        Embedded::start(&format!("bhdemo{pid}"), &state, &format!("bhdemo{pid}-")),
    )?;
    println!(
        "bulkhead demo: an in-process service in the throwaway host namespace {}",
        service.host().display()
    );
    let runtime = step(
        "start runtime",
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    )?;
    let tour = Tour {
        client: Client::new(service.socket()),
        service,
        runtime,
    };
    let result = tour.run().and_then(|agree| {
        if with_vm {
            let guest_dir = std::env::temp_dir().join(format!("bulkhead-demo-{pid}-guest"));
            let section = vm::run(&tour, guest_dir);
            vm::teardown(&tour);
            section?;
        }
        Ok(agree)
    });
    tour.teardown();
    drop(tour);
    match result? {
        true => println!(
            "\nkernel and trace agreed on every cell; everything the demo made is removed."
        ),
        false => {
            return Err(DemoError::Step(
                "the kernel and trace disagreed on some cells (see above)".into(),
            ))
        }
    }
    Ok(())
}
