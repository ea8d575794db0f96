//! The command line, exactly as spec §8's CLI contract writes it.
//!
//! clap derive types only: names, flags, aliases and the closed sets of values
//! the contract lists (drivers, isolation, profiles, modes, directions,
//! actions, rule types). Everything else (names, addresses, ports, protocols)
//! is passed on as typed by the user and validated by the daemon. `hyperv` is
//! accepted (hidden) as an isolation value; the daemon maps it to `vm`.

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

/// The bulkhead command line.
#[derive(Debug, Parser)]
#[command(
    name = "bulkhead",
    version,
    about = "Manage bulkhead container networks, namespaces, endpoints and port ACLs"
)]
pub struct Cli {
    /// Path of bulkheadd's API socket.
    #[arg(long, global = true, value_name = "PATH", default_value = bulkhead_api::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Output format: tables for people, JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: TopCommand,
}

/// `--output` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns.
    Table,
    /// The API's JSON.
    Json,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Manage networks (virtual switches).
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage namespaces (compartments).
    #[command(subcommand, alias = "compartment")]
    Namespace(NamespaceCommand),
    /// Manage endpoints (container NICs).
    #[command(subcommand)]
    Endpoint(EndpointCommand),
    /// Manage an endpoint's custom port ACLs.
    #[command(subcommand)]
    Acl(AclCommand),
    /// Run a command inside a namespace's network namespace.
    Exec(ExecArgs),
    /// Explain the verdict for a packet.
    Trace(TraceArgs),
    /// Import an HCN v2 JSON document.
    Import(ImportArgs),
    /// Show what was dropped and why, and firewall tampering and repairs.
    Events(EventsArgs),
    /// Manage the cluster's nodes (a daemon started with --etcd).
    #[command(subcommand)]
    Node(NodeCommand),
    /// Run the guided tour on this machine.
    Demo(DemoArgs),
    /// Print a shell completion script.
    Completions {
        /// Shell to generate for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(NetworkCreateArgs),
    /// List networks.
    Ls,
    /// Show a network.
    Inspect {
        /// Network name.
        name: String,
    },
    /// Remove a network.
    Rm {
        /// Network name.
        name: String,
    },
}

/// `network create` flags.
#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Network name.
    pub name: String,
    /// Network driver.
    #[arg(long, value_parser = ["nat", "transparent", "l2bridge", "l2tunnel", "overlay"])]
    pub driver: String,
    /// Subnet (CIDR).
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,
    /// Gateway address.
    #[arg(long, value_name = "IP")]
    pub gateway: Option<String>,
    /// Uplink interface.
    #[arg(long, value_name = "IFACE")]
    pub uplink: Option<String>,
    /// VXLAN network identifier (overlay).
    #[arg(long, value_name = "N")]
    pub vni: Option<String>,
    /// Default port ACL profile.
    #[arg(long, value_parser = ["current", "legacy"])]
    pub acl_profile: Option<String>,
}

/// `namespace` subcommands.
#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// Create a namespace.
    Create(NamespaceCreateArgs),
    /// List namespaces.
    Ls,
    /// Show a namespace.
    Inspect {
        /// Namespace name.
        name: String,
    },
    /// Remove a namespace.
    Rm {
        /// Namespace name.
        name: String,
    },
}

/// `namespace create` flags.
#[derive(Debug, Args)]
pub struct NamespaceCreateArgs {
    /// Namespace name.
    pub name: String,
    /// Isolation mode (`hyperv` is accepted for `vm`).
    #[arg(long, value_parser = isolation_values())]
    pub isolation: Option<String>,
}

fn isolation_values() -> PossibleValuesParser {
    PossibleValuesParser::new([
        PossibleValue::new("process"),
        PossibleValue::new("vm"),
        PossibleValue::new("hyperv").hide(true),
    ])
}

/// `endpoint` subcommands.
#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Create an endpoint.
    Create(Box<EndpointCreateArgs>),
    /// List endpoints.
    Ls {
        /// Also list the endpoints of the other cluster nodes, with a NODE column.
        #[arg(long)]
        all_nodes: bool,
    },
    /// Show an endpoint.
    Inspect {
        /// Endpoint name.
        name: String,
    },
    /// Remove an endpoint.
    Rm {
        /// Endpoint name.
        name: String,
    },
}

/// `node` subcommands.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List the cluster's nodes: name, underlay address, state, endpoints, last seen.
    Ls,
    /// Remove a node that is not ready (withdraws its endpoints, frees its address blocks).
    Rm {
        /// Node name.
        name: String,
    },
}

/// `endpoint create` flags.
#[derive(Debug, Args)]
pub struct EndpointCreateArgs {
    /// Endpoint name.
    pub name: String,
    /// Network to attach to.
    #[arg(long, value_name = "NET")]
    pub network: String,
    /// Namespace to live in.
    #[arg(long, value_name = "NS")]
    pub namespace: String,
    /// Address (else allocated).
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// MAC address (else derived).
    #[arg(long, value_name = "MAC")]
    pub mac: Option<String>,
    /// Publish a port: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]; repeatable.
    #[arg(long, value_name = "MAPPING")]
    pub publish: Vec<String>,
    /// How custom ACLs combine with the default profile.
    #[arg(long, value_parser = ["layered", "replace"])]
    pub acl_mode: Option<String>,
    /// vm endpoints: the uid that may open the TAP (an unprivileged VMM).
    #[arg(long, value_name = "UID")]
    pub tap_owner: Option<String>,
    /// vm endpoints: the gid whose members may open the TAP.
    #[arg(long, value_name = "GID")]
    pub tap_group: Option<String>,
    /// vm endpoints: TAP queues, 1-16 (multi-queue above 1).
    #[arg(long, value_name = "N")]
    pub tap_queues: Option<String>,
}

/// `acl` subcommands.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add a custom ACL rule to an endpoint.
    Add(Box<AclAddArgs>),
    /// List an endpoint's custom ACL rules.
    Ls {
        /// Endpoint name.
        endpoint: String,
        /// Add each rule's packet and byte counters per enforcement point,
        /// and the default rules' (read from the kernel).
        #[arg(long)]
        stats: bool,
    },
    /// Remove a custom ACL rule.
    Rm {
        /// Endpoint name.
        endpoint: String,
        /// Rule id.
        id: String,
    },
}

/// `acl add` flags.
#[derive(Debug, Args)]
pub struct AclAddArgs {
    /// Endpoint name.
    pub endpoint: String,
    /// Traffic direction, seen from the endpoint.
    #[arg(long, value_parser = ["in", "out"])]
    pub direction: String,
    /// What the rule does.
    #[arg(long, value_parser = ["allow", "block"])]
    pub action: String,
    /// Protocol name or number, or `any`.
    #[arg(long, value_name = "P")]
    pub protocol: Option<String>,
    /// Local ports and ranges, comma separated.
    #[arg(long, value_name = "LIST")]
    pub local_ports: Option<String>,
    /// Remote ports and ranges, comma separated.
    #[arg(long, value_name = "LIST")]
    pub remote_ports: Option<String>,
    /// Local addresses (CIDR), comma separated.
    #[arg(long, value_name = "LIST")]
    pub local_addresses: Option<String>,
    /// Remote addresses (CIDR), comma separated.
    #[arg(long, value_name = "LIST")]
    pub remote_addresses: Option<String>,
    /// Priority; the lower number wins.
    #[arg(long, value_name = "N")]
    pub priority: Option<String>,
    /// Enforcement point.
    #[arg(long, value_parser = ["host", "switch"])]
    pub rule_type: Option<String>,
    /// Rule id (else generated).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
}

/// `demo` arguments.
#[derive(Debug, Clone, Copy, Args)]
pub struct DemoArgs {
    /// Also boot a QEMU guest (TCG, tens of seconds) on a vm endpoint of an
    /// l2bridge network next to a process endpoint: its DHCP lease from
    /// bulkhead, traffic both ways, and a switch-port block and its removal.
    #[arg(long)]
    pub vm: bool,
}

/// `exec` arguments.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Namespace to enter.
    pub namespace: String,
    /// Command and its arguments, after `--`.
    #[arg(last = true, required = true, num_args = 1.., value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `trace` flags.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Source endpoint or IP (an endpoint's, the host's, or outside).
    #[arg(long, value_name = "ENDPOINT|IP")]
    pub from: String,
    /// Destination endpoint or IP; HOST_IP:PORT resolves a published port.
    #[arg(long, value_name = "ENDPOINT|IP|HOST_IP:PORT")]
    pub to: String,
    /// Protocol name or number.
    #[arg(long, value_name = "P")]
    pub protocol: String,
    /// Destination port.
    #[arg(long, value_name = "N")]
    pub port: Option<String>,
    /// Source address the --from endpoint writes (not its own: spoofed).
    #[arg(long, value_name = "IP")]
    pub source_ip: Option<String>,
    /// Source port (default 49152).
    #[arg(long, value_name = "N")]
    pub source_port: Option<String>,
    /// Trace a packet of an established connection (a reply).
    #[arg(long)]
    pub established: bool,
}

/// `events` flags.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep printing new events as they happen.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only events of this endpoint.
    #[arg(long, value_name = "EP")]
    pub endpoint: Option<String>,
}

/// `import` arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// HCN v2 JSON document.
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,
}
