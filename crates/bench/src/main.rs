//! `bulkhead-bench`: benchmark commands that print tables. They measure and
//! report; they never gate anything on a clock.

#![forbid(unsafe_code)]

mod policy;

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
    /// Policy engine: compile times, region counts, classifier verdict time,
    /// disagreement with the linear reference.
    Policy(policy::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(args) => policy::run(&args),
    };
    if let Err(e) = result {
        eprintln!("bulkhead-bench: {e}");
        std::process::exit(1);
    }
}
