//! The `bulkhead` binary against a fake bulkheadd on a temporary socket:
//! exit statuses, one-line errors on stderr, tables and JSON on stdout.

use bulkhead_api::{ApiError, Command, NamespaceInfo, NetworkInfo, Response, Server, Service};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

struct Fake;

impl Service for Fake {
    async fn handle(&self, cmd: Command) -> Result<Response, ApiError> {
        let net = NetworkInfo {
            id: "3f1c2b7a-5d4e-4c1b-9a0f-1234567890ab".into(),
            name: "web".into(),
            driver: "nat".into(),
            subnets: vec!["172.30.0.0/24".into()],
            acl_profile: "current".into(),
            ..NetworkInfo::default()
        };
        match cmd {
            Command::NetworkList => Ok(Response::Networks(vec![net])),
            Command::NetworkCreate(_) => Ok(Response::Network(net)),
            Command::NetworkRemove { .. } => Ok(Response::Removed),
            Command::NamespaceInspect { name } => Ok(Response::Namespace(NamespaceInfo {
                // Entering our own network namespace is harmless.
                netns_path: (name == "pod").then(|| "/proc/self/ns/net".into()),
                isolation: if name == "pod" { "process" } else { "vm" }.into(),
                name,
                ..NamespaceInfo::default()
            })),
            Command::NetworkInspect { name } => Err(ApiError::not_found(format!(
                "network {name:?} does not exist"
            ))),
            _ => Err(ApiError::bad_request("not in this fake")),
        }
    }
}

/// Runs a fake daemon on its own runtime thread for the test's lifetime.
fn daemon() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bulkhead.sock");
    let server = Server::bind(&socket).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(server.serve(Arc::new(Fake), std::future::pending()))
    });
    (dir, socket)
}

fn bulkhead(socket: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

fn stderr_line(out: &Output) -> String {
    let text = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "stderr is not one line: {text:?}");
    assert!(text.starts_with("bulkhead: "), "{text:?}");
    text.trim_end().to_owned()
}

#[test]
fn success_prints_tables_and_json() {
    let (_dir, socket) = daemon();
    let out = bulkhead(&socket, &["network", "ls"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("NETWORK ID"), "{text}");
    assert!(text.contains("web"), "{text}");
    let out = bulkhead(&socket, &["--output", "json", "network", "ls"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["driver"], "nat");
    let out = bulkhead(&socket, &["network", "create", "web", "--driver", "nat"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "web\n");
    let out = bulkhead(&socket, &["network", "rm", "web"]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn daemon_errors_exit_1_with_one_line() {
    let (_dir, socket) = daemon();
    let out = bulkhead(&socket, &["network", "inspect", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_line(&out),
        "bulkhead: network \"nope\" does not exist"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_daemon_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let out = bulkhead(&socket, &["network", "ls"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_line(&out),
        format!(
            "bulkhead: cannot reach bulkheadd at {}: No such file or directory (is bulkheadd running?)",
            socket.display()
        )
    );
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    for args in [
        &["network", "create", "n", "--driver", "bogus"][..],
        &["network"][..],
        &["frobnicate"][..],
    ] {
        let out = bulkhead(&socket, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        stderr_line(&out);
    }
}

#[test]
fn help_version_completions_and_demo() {
    let socket = Path::new("/nonexistent.sock");
    let out = bulkhead(socket, &["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("namespace"));
    let out = bulkhead(socket, &["--version"]);
    assert!(out.status.success());
    for shell in ["bash", "zsh", "fish"] {
        let out = bulkhead(socket, &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(String::from_utf8(out.stdout).unwrap().contains("bulkhead"));
    }
}

/// `demo` runs the whole tour as root — real probes, kernel and trace in
/// agreement on every cell — and leaves no namespace behind; without root it
/// refuses in one line.
#[test]
fn demo_runs_the_tour_and_leaves_nothing() {
    let socket = Path::new("/nonexistent.sock");
    let out = bulkhead(socket, &["demo"]);
    if !nix::unistd::geteuid().is_root() {
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr_line(&out).starts_with("bulkhead: demo needs root"));
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the demo as root"
        );
        return;
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verdict matrix"), "{stdout}");
    assert!(
        stdout.contains("kernel and trace agreed on every cell"),
        "{stdout}"
    );
    assert!(stdout.contains("deny-client-web"), "{stdout}");
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let pid_part = "bhdemo";
    assert!(
        !left.iter().any(|n| n.starts_with(pid_part)),
        "demo left namespaces: {left:?}"
    );
}

#[test]
fn exec_runs_the_command_in_the_namespace_and_keeps_its_status() {
    let (_dir, socket) = daemon();
    let out = bulkhead(
        &socket,
        &["exec", "pod", "--", "sh", "-c", "echo in; exit 7"],
    );
    let root = nix::unistd::geteuid().is_root();
    if root {
        assert_eq!(out.status.code(), Some(7), "{out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "in\n");
        let out = bulkhead(&socket, &["exec", "pod", "--", "/nonexistent/cmd"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr_line(&out),
            "bulkhead: cannot run /nonexistent/cmd: No such file or directory"
        );
    } else {
        assert_eq!(out.status.code(), Some(1));
        let line = stderr_line(&out);
        assert!(line.contains("cannot enter network namespace"), "{line}");
    }
    let out = bulkhead(&socket, &["exec", "vm1", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_line(&out),
        "bulkhead: namespace vm1 has no network namespace to enter (isolation vm)"
    );
}
