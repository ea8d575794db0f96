//! The policy crate must stay pure: no I/O crates among its dependencies and no I/O
//! or process calls in its source.

use std::path::Path;

const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "nix",
    "libc",
    "rtnetlink",
    "netlink",
    "redb",
    "hyper",
    "mio",
    "socket2",
    "async-std",
];
const FORBIDDEN_SOURCE: &[&str] = &[
    "std::fs",
    "std::net::Tcp",
    "std::net::Udp",
    "std::process",
    "std::os::",
    "unsafe {",
    "unsafe fn",
    "unsafe impl",
];

fn check(crate_dir: &Path) {
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap_or("")
        .split("\n[")
        .next()
        .unwrap_or("");
    for line in deps.lines() {
        let name = line.split(['=', '.', ' ']).next().unwrap_or("").trim();
        for bad in FORBIDDEN_CRATES {
            assert!(
                !name.starts_with(bad),
                "{} depends on I/O crate {name}",
                crate_dir.display()
            );
        }
    }
    let mut stack = vec![crate_dir.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for bad in FORBIDDEN_SOURCE {
                    assert!(!text.contains(bad), "{} uses {bad}", path.display());
                }
            }
        }
    }
}

#[test]
fn policy_does_no_io() {
    check(Path::new(env!("CARGO_MANIFEST_DIR")));
}
