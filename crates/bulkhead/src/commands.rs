//! Mapping the command line to API calls, and running them.
//!
//! [`plan`] turns parsed arguments into what to do — an API [`Command`] sent
//! to bulkheadd, an `exec`, the demo, or completions — and is pure except for
//! reading an import file. [`run`] carries the plan out on a single-threaded
//! runtime and prints the result; every failure becomes one [`CliError`]
//! whose message is a single line.

use crate::cli::{
    AclCommand, Cli, DemoArgs, EndpointCommand, EventsArgs, ExecArgs, NamespaceCommand,
    NetworkCommand, NodeCommand, TopCommand,
};
use crate::demo::{self, DemoError};
use crate::exec::{self, ExecError};
use crate::output;
use bulkhead_api::{
    AclRuleSpec, Client, ClientError, Command, EndpointSpec, ImportRequest, NamespaceSpec,
    NetworkSpec, TraceSpec,
};
use clap::CommandFactory;
use std::io::Write;
use std::path::PathBuf;

/// Why a CLI command failed; displayed after `bulkhead: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Talking to bulkheadd failed, or bulkheadd refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// `exec` failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// `demo` failed.
    #[error(transparent)]
    Demo(#[from] DemoError),
    /// An import file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// An import file is not JSON.
    #[error("{} is not valid JSON: {error}", path.display())]
    BadJson {
        /// The file.
        path: PathBuf,
        /// The parse error.
        error: serde_json::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// Standard output could not be written.
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
}

/// What a command line asks for.
#[derive(Debug)]
pub enum Plan {
    /// Send a command to bulkheadd and print its response.
    Api(Box<Command>),
    /// Look up a namespace, then run a command inside it.
    Exec(ExecArgs),
    /// Run the demo.
    Demo(DemoArgs),
    /// Print a completion script.
    Completions(clap_complete::Shell),
    /// List (or follow) events.
    Events(EventsArgs),
}

/// Maps parsed arguments to a [`Plan`]. Reads the file of an `import`.
pub fn plan(top: TopCommand) -> Result<Plan, CliError> {
    let cmd = match top {
        TopCommand::Exec(args) => return Ok(Plan::Exec(args)),
        TopCommand::Demo(args) => return Ok(Plan::Demo(args)),
        TopCommand::Completions { shell } => return Ok(Plan::Completions(shell)),
        TopCommand::Events(args) => return Ok(Plan::Events(args)),
        TopCommand::Network(c) => network(c),
        TopCommand::Namespace(c) => namespace(c),
        TopCommand::Endpoint(c) => endpoint(c),
        TopCommand::Acl(c) => acl(c),
        TopCommand::Node(NodeCommand::Ls) => Command::NodeList,
        TopCommand::Node(NodeCommand::Rm { name }) => Command::NodeRemove { name },
        TopCommand::Trace(a) => Command::Trace(TraceSpec {
            from: a.from,
            to: a.to,
            protocol: a.protocol,
            port: a.port,
            source_ip: a.source_ip,
            source_port: a.source_port,
            established: a.established,
        }),
        TopCommand::Import(a) => {
            let text = std::fs::read(&a.file).map_err(|error| CliError::ReadFile {
                path: a.file.clone(),
                error,
            })?;
            let document = serde_json::from_slice(&text).map_err(|error| CliError::BadJson {
                path: a.file.clone(),
                error,
            })?;
            Command::Import(ImportRequest { document })
        }
    };
    Ok(Plan::Api(Box::new(cmd)))
}

fn network(c: NetworkCommand) -> Command {
    match c {
        NetworkCommand::Create(a) => Command::NetworkCreate(NetworkSpec {
            name: a.name,
            driver: a.driver,
            subnets: a.subnet.into_iter().collect(),
            gateway: a.gateway,
            uplink: a.uplink,
            vni: a.vni,
            acl_profile: a.acl_profile,
        }),
        NetworkCommand::Ls => Command::NetworkList,
        NetworkCommand::Inspect { name } => Command::NetworkInspect { name },
        NetworkCommand::Rm { name } => Command::NetworkRemove { name },
    }
}

fn namespace(c: NamespaceCommand) -> Command {
    match c {
        NamespaceCommand::Create(a) => Command::NamespaceCreate(NamespaceSpec {
            name: a.name,
            isolation: a.isolation,
            ..NamespaceSpec::default()
        }),
        NamespaceCommand::Ls => Command::NamespaceList,
        NamespaceCommand::Inspect { name } => Command::NamespaceInspect { name },
        NamespaceCommand::Rm { name } => Command::NamespaceRemove { name },
    }
}

fn endpoint(c: EndpointCommand) -> Command {
    match c {
        EndpointCommand::Create(a) => Command::EndpointCreate(EndpointSpec {
            name: a.name,
            network: a.network,
            namespace: a.namespace,
            ip: a.ip,
            mac: a.mac,
            publish: a.publish,
            acl_mode: a.acl_mode,
            ifname: None,
            container_id: None,
            // Validated by the daemon (one-line errors naming the field).
            tap_owner: a.tap_owner,
            tap_group: a.tap_group,
            tap_queues: a.tap_queues,
        }),
        EndpointCommand::Ls { all_nodes: false } => Command::EndpointList,
        EndpointCommand::Ls { all_nodes: true } => Command::EndpointListAll,
        EndpointCommand::Inspect { name } => Command::EndpointInspect { name },
        EndpointCommand::Rm { name } => Command::EndpointRemove { name },
    }
}

fn acl(c: AclCommand) -> Command {
    match c {
        AclCommand::Add(a) => Command::AclAdd {
            endpoint: a.endpoint,
            rule: AclRuleSpec {
                direction: a.direction,
                action: a.action,
                protocol: a.protocol,
                local_ports: a.local_ports,
                remote_ports: a.remote_ports,
                local_addresses: a.local_addresses,
                remote_addresses: a.remote_addresses,
                priority: a.priority,
                rule_type: a.rule_type,
                id: a.id,
            },
        },
        AclCommand::Ls { endpoint, stats } if stats => Command::AclStats { endpoint },
        AclCommand::Ls { endpoint, .. } => Command::AclList { endpoint },
        AclCommand::Rm { endpoint, id } => Command::AclRemove { endpoint, id },
    }
}

/// Runs a parsed command line to completion.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let client = Client::new(&cli.socket);
    match plan(cli.command)? {
        Plan::Demo(args) => Ok(demo::run(args.vm)?),
        Plan::Completions(shell) => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "bulkhead", &mut out);
            print(&out)
        }
        Plan::Exec(args) => {
            let ns = runtime()?.block_on(client.namespace_inspect(&args.namespace))?;
            let Some(path) = ns.netns_path else {
                return Err(ExecError::NoNetns {
                    namespace: ns.name,
                    isolation: ns.isolation,
                }
                .into());
            };
            Err(exec::exec_in(path.as_ref(), &args.command).into())
        }
        Plan::Events(args) => runtime()?.block_on(crate::events::run(
            &client,
            cli.output,
            args.endpoint,
            args.follow,
            |text| {
                // A closed pipe (`| head`) ends following quietly.
                let mut stdout = std::io::stdout().lock();
                match stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
                    Err(e) => Err(CliError::Output(e)),
                }
            },
        )),
        Plan::Api(cmd) => {
            // One call per process: a blocking exchange, no runtime.
            let response = client.execute_blocking(&cmd)?;
            print(output::render(cli.output, &cmd, &response).as_bytes())
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn print(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
        _ => Ok(()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(CliError::Runtime)
}
