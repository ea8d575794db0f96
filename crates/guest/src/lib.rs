//! Real guests on bulkhead vm endpoints, for `bulkhead demo --vm` and the
//! end-to-end tests (which re-use it through `bulkhead_testkit::guest`):
//! the one home of the guest's boot files ([`initramfs`]), the QEMU command
//! line and the serial-console driver ([`Guest`]), and the probe protocol
//! between a guest and a network namespace or another guest ([`probe`]).
//!
//! Contract: nothing is downloaded. [`check_host`] names, in one line, the
//! first thing this machine lacks (QEMU, a kernel with its modules in
//! `/boot`, a static busybox) and the Debian package that provides it,
//! before anything is built or started. Every operation returns a
//! [`GuestError`] instead of panicking; a [`Guest`] is killed when dropped.

pub mod initramfs;
mod machine;
pub mod probe;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use initramfs::{BootFiles, READY};
pub use machine::{Guest, BOOT_TIMEOUT};

/// What went wrong with a guest; one line each.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// A tool or file the guest needs is not on this machine.
    #[error("{what} is missing (install the Debian package {package})")]
    Missing { what: String, package: &'static str },
    /// The boot files could not be built.
    #[error("build the guest's boot files: {0}")]
    Build(String),
    /// QEMU did not start.
    #[error("start qemu-system-x86_64: {0}")]
    Spawn(std::io::Error),
    /// The guest's shell did not come up in time.
    #[error("guest {name} did not boot in {waited:?}")]
    Boot { name: String, waited: Duration },
    /// QEMU ended before the guest's shell came up.
    #[error("guest {name}: QEMU exited before the guest booted ({status})")]
    Exited { name: String, status: String },
    /// A module of the guest's NIC driver did not load.
    #[error("guest {name}: a module did not load: {line}")]
    Module { name: String, line: String },
    /// The console could not be written.
    #[error("guest {name}: write its console: {source}")]
    Console {
        name: String,
        source: std::io::Error,
    },
    /// A command got no answer in time.
    #[error("guest {name}: no answer to {cmd:?} in {timeout:?}")]
    NoAnswer {
        name: String,
        cmd: String,
        timeout: Duration,
    },
    /// A command that had to succeed failed.
    #[error("guest {name}: {cmd:?} exited {status}: {out}")]
    Failed {
        name: String,
        cmd: String,
        status: i32,
        out: String,
    },
    /// The namespace side of a probe could not be set up.
    #[error("probe in {ns}: {source}")]
    Probe { ns: PathBuf, source: std::io::Error },
}

/// The result of guest operations.
pub type Result<T> = std::result::Result<T, GuestError>;

/// Whether `name` is an executable file in a directory of `PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(name)).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

/// Checks that guests can be booted here: `qemu-system-x86_64` on the
/// `PATH` (`qemu-system-x86`), a `/boot/vmlinuz-*` with its modules
/// (`linux-image-amd64`) and a statically linked `/bin/busybox`
/// (`busybox-static`: the guest has no libc). The first that is missing.
pub fn check_host() -> Result<()> {
    if !on_path("qemu-system-x86_64") {
        return Err(GuestError::Missing {
            what: "qemu-system-x86_64".into(),
            package: "qemu-system-x86",
        });
    }
    initramfs::guest_kernel()?;
    initramfs::static_busybox(Path::new(initramfs::BUSYBOX)).map(|_| ())
}
