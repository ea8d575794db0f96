//! The `bulkhead` command-line client, as a library so it can be tested.
//!
//! The binary parses arguments ([`cli`]), plans and runs them against
//! bulkheadd's socket ([`commands`]), and prints tables or JSON ([`output`]).
//! It holds no privileges and talks only API; `exec` is the one command
//! that touches the kernel, by entering a network namespace for the user's
//! command ([`exec`]). `demo` ([`demo`]) starts bulkheadd's service
//! in-process through the daemon crate's library and then drives it over
//! the API like any client (docs/design.md). Errors are printed as one line,
//! `bulkhead: <message>`; [`usage_error_line`] folds clap's usage errors
//! into that form.

pub mod cli;
pub mod commands;
pub mod demo;
pub mod events;
pub mod exec;
pub mod output;
mod output_nodes;
mod output_stats;

/// One line for a clap usage error: clap's message and tips, folded, and
/// which `--help` to read.
pub fn usage_error_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let mut message = Vec::new();
    let mut usage = None;
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u);
            break;
        }
        if line.starts_with("For more information") {
            continue;
        }
        message.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    let missing_subcommand = matches!(
        error.kind(),
        clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    let mut text = if missing_subcommand || message.is_empty() {
        "a subcommand is required".to_owned()
    } else {
        message.join(" ").replace(" tip: ", "; tip: ")
    };
    // `bulkhead acl add [OPTIONS] --direction <D> ...` -> `bulkhead acl add`
    let command: Vec<&str> = usage
        .unwrap_or("bulkhead")
        .split_whitespace()
        .take_while(|w| !w.starts_with(['[', '<', '-']))
        .collect();
    text.push_str(&format!("; see '{} --help'", command.join(" ")));
    text
}
