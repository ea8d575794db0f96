//! The commands tests may spawn to set up and inspect (never the product):
//! `ip` and `nft`, each panicking with its output when it fails, and the
//! workspace binaries the tests drive.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cmd` (described as `what` in the panic), panicking with its
/// output when it fails; stdout.
pub fn checked(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip ARGS`, panicking with its output when it fails; stdout.
pub fn ip(args: &[&str]) -> String {
    checked(
        Command::new("ip").args(args),
        &format!("ip {}", args.join(" ")),
    )
}

/// `ip ARGS` when the caller only wants the output, failure or not.
pub(crate) fn ip_lossy(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `nft ARGS` in the pinned namespace `ns_name`; its stdout.
pub fn nft(ns_name: &str, args: &[&str]) -> String {
    checked(
        Command::new("ip")
            .args(["netns", "exec", ns_name, "nft"])
            .args(args),
        &format!("nft {}", args.join(" ")),
    )
}

/// Deletes the one rule of chain `chain` of `inet table` in the host
/// namespace `host` whose comment contains `needle`: the deliberately
/// weakened setup of an attack or agreement test.
pub fn delete_rule(host: &str, table: &str, chain: &str, needle: &str) {
    let list = nft(host, &["-a", "list", "chain", "inet", table, chain]);
    let handle = list
        .lines()
        .find(|l| l.contains("comment \"") && l.contains(needle))
        .and_then(|l| l.rsplit("# handle ").next())
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|| panic!("no rule {needle:?} in {table} {chain}:\n{list}"));
    nft(
        host,
        &["delete", "rule", "inet", table, chain, "handle", &handle],
    );
}

/// A binary of the workspace in the test executable's target directory
/// (`target/debug/deps/<test>-<hash>` -> `target/debug/<name>`):
/// `CARGO_BIN_EXE_*` exists only for the test's own package. `cargo test
/// --workspace` builds them all; alone, build the package first.
pub fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p {name}` (or `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// Runs `sysctl -qw KEY=VALUE` in the pinned namespace `ns_name` (one the
/// test made; never the machine's own).
pub fn sysctl(ns_name: &str, key_value: &str) {
    checked(
        Command::new("ip").args(["netns", "exec", ns_name, "sysctl", "-qw", key_value]),
        &format!("sysctl {key_value} in {ns_name}"),
    );
}
