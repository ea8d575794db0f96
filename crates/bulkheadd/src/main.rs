//! `bulkheadd [--state-dir DIR] [--socket PATH]`: bulkhead's service.

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
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BULKHEAD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let opts = bulkheadd::Options {
        state_dir: args.state_dir,
        socket: args.socket,
        netns_prefix: args.netns_prefix,
        peers: args.peers,
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
