//! The client binaries a table spawns per call (the `bulkhead` CLI, the
//! `bulkhead-cni` plugin), found in the bench's target directory.
//!
//! bulkhead ships them as static musl builds (README, "Installing"): a process that spawns per call pays its
//! start-up every call, and a glibc binary's start-up alone (the dynamic
//! loader, relocations, CPU feature probing) is ~0.7 ms here. So a table
//! takes the static build when `bench/run` made one
//! (`target/x86_64-unknown-linux-musl/release/NAME`) and the glibc build
//! next to this executable otherwise, and says which.

use std::path::PathBuf;

/// The static build's target triple.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-musl";

/// A client binary and which build it is.
#[derive(Debug, Clone)]
pub struct ClientBin {
    pub path: PathBuf,
    /// `static (musl)` or `dynamic (glibc)`.
    pub build: &'static str,
}

/// `name`'s static build if there is one, else the one next to this
/// executable; an error says how to build it.
pub fn find(name: &str) -> Result<ClientBin, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let dir = exe.parent().ok_or("executable without a directory")?;
    // target/release/bulkhead-bench → target/<triple>/release/NAME
    let profile = dir.file_name().unwrap_or_default();
    if let Some(target) = dir.parent() {
        let static_bin = target.join(STATIC_TARGET).join(profile).join(name);
        if static_bin.exists() {
            return Ok(ClientBin {
                path: static_bin,
                build: "static (musl)",
            });
        }
    }
    Ok(ClientBin {
        path: beside_exe(name)?,
        build: "dynamic (glibc)",
    })
}

/// The release binary `name` built next to this executable (the daemon,
/// or a client without a static build); an error says how to build it.
pub fn beside_exe(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let bin = exe.with_file_name(name);
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} missing: run `cargo build --release -p {name}` (bench/run does)",
            bin.display()
        ))
    }
}
