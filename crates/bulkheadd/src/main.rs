//! `bulkheadd [--state-dir DIR] [--socket PATH] [--api-group GROUP]
//! [--api-header-timeout DUR] [--api-max-connections N]
//! [--api-max-connections-per-uid N] [--metrics-address ADDR:PORT]
//! [--web-address ADDR:PORT] [--etcd URL[,URL...] --node NAME
//! --underlay-address IP [--etcd-cacert F --etcd-cert F --etcd-key F]
//! [--node-ttl DURATION] [--lost-node-grace DURATION]]
//! [--warm-namespaces N]`: bulkhead's service.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "bulkheadd",
    version,
    about = "bulkhead's host networking service"
)]
struct Args {
    /// Where the store lives.
    #[arg(long, default_value = "/var/lib/bulkhead")]
    state_dir: PathBuf,
    /// The API socket.
    #[arg(long, default_value = "/run/bulkhead/bulkhead.sock")]
    socket: PathBuf,
    /// Prefix of the namespace pins this daemon owns under /run/netns.
    #[arg(long, default_value = "bh-", hide = true)]
    netns_prefix: String,
    /// Static peer list for overlay networks (JSON: network name → remote
    /// endpoints, see docs/drivers.md).
    #[arg(long)]
    peers: Option<PathBuf>,
    /// Besides root, members of this group (name or gid) may use the API;
    /// the socket is then mode 0660, owned by root and this group.
    #[arg(long, value_name = "GROUP")]
    api_group: Option<String>,
    /// Time allowed for a request's head, for its body after the head, and
    /// for idling between requests on a kept-alive connection (e.g. 10s,
    /// 500ms).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = bulkheadd::run::parse_duration)]
    api_header_timeout: std::time::Duration,
    /// API connections open at once, in all.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    api_max_connections: u32,
    /// API connections open at once per uid other than root.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    api_max_connections_per_uid: u32,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (read-only). PORT
    /// alone or localhost:PORT binds loopback; another address is bound only
    /// when named here as an IP literal; 0.0.0.0 and :: are refused.
    #[arg(long, value_name = "ADDR:PORT", value_parser = |s: &str| bulkheadd::listen::parse_address("--metrics-address", s))]
    metrics_address: Option<std::net::SocketAddr>,
    /// Serve the read-only web console at http://ADDR:PORT/ (same address
    /// rules as --metrics-address).
    #[arg(long, value_name = "ADDR:PORT", value_parser = |s: &str| bulkheadd::listen::parse_address("--web-address", s))]
    web_address: Option<std::net::SocketAddr>,
    /// Join a cluster whose shared state is in etcd: its endpoints,
    /// comma-separated (http:// or https:// URLs). Needs --node and
    /// --underlay-address (see docs/cluster.md).
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',', requires_all = ["node", "underlay_address"], conflicts_with = "peers")]
    etcd: Vec<String>,
    /// This host's node name in the cluster.
    #[arg(long, value_name = "NAME", requires = "etcd")]
    node: Option<String>,
    /// This host's address on the underlay (the VXLAN tunnel endpoint).
    #[arg(long, value_name = "IP", requires = "etcd")]
    underlay_address: Option<std::net::IpAddr>,
    /// CA bundle that signs the etcd servers' certificates.
    #[arg(long, value_name = "FILE", requires = "etcd")]
    etcd_cacert: Option<PathBuf>,
    /// Client certificate presented to etcd.
    #[arg(long, value_name = "FILE", requires_all = ["etcd", "etcd_key"])]
    etcd_cert: Option<PathBuf>,
    /// Key of --etcd-cert.
    #[arg(long, value_name = "FILE", requires_all = ["etcd", "etcd_cert"])]
    etcd_key: Option<PathBuf>,
    /// TTL of this node's lease: it is `lost` this long after its daemon stops.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = bulkheadd::run::parse_duration)]
    node_ttl: std::time::Duration,
    /// Remove a node lost this long (withdraws its endpoints and frees its
    /// address blocks); without it only `bulkhead node rm` removes one.
    #[arg(long, value_name = "DURATION", value_parser = bulkheadd::run::parse_duration)]
    lost_node_grace: Option<std::time::Duration>,
    /// Network namespaces kept made ahead of their create, so that a
    /// namespace create only pins one (0: make each at its create).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=64))]
    warm_namespaces: u32,
}

fn main() {
    bulkhead_engine::heap::keep_compile_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BULKHEAD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let group = match args.api_group.as_deref().map(bulkheadd::run::resolve_group) {
        None => None,
        Some(Ok(gid)) => Some(gid),
        Some(Err(e)) => {
            eprintln!("bulkheadd: {e}");
            std::process::exit(2);
        }
    };
    let cluster = match (args.etcd.is_empty(), args.node, args.underlay_address) {
        (false, Some(node), Some(underlay)) => Some(bulkhead_cluster::Config {
            endpoints: args.etcd,
            node,
            underlay,
            cacert: args.etcd_cacert,
            cert: args.etcd_cert,
            key: args.etcd_key,
            node_ttl: args.node_ttl,
            lost_node_grace: args.lost_node_grace,
            state_dir: args.state_dir.clone(),
        }),
        _ => None,
    };
    let opts = bulkheadd::Options {
        cluster,
        state_dir: args.state_dir,
        socket: args.socket,
        netns_prefix: args.netns_prefix,
        peers: args.peers,
        api: bulkhead_api::ServerConfig {
            group,
            header_timeout: args.api_header_timeout,
            max_connections: args.api_max_connections as usize,
            max_connections_per_uid: args.api_max_connections_per_uid as usize,
        },
        metrics_address: args.metrics_address,
        web_address: args.web_address,
        warm_namespaces: args.warm_namespaces as usize,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bulkheadd: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(bulkheadd::run(opts)) {
        eprintln!("bulkheadd: {e}");
        std::process::exit(1);
    }
}
