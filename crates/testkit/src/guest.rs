//! Real QEMU guests in tests: `bulkhead_guest` (the product's one home of
//! the boot files, the QEMU command line and the console probes) with the
//! test kit's conventions on top — boot files built once per test process
//! into `target/<profile>/guest/`, and every failure a panic that carries
//! the guest's console.
//!
//! [`Guest`] derefs to [`bulkhead_guest::Guest`]; its own methods of the
//! same names panic where the product's return an error.

pub mod probe;

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

pub use bulkhead_guest::{initramfs, BootFiles, GuestError, BOOT_TIMEOUT};

/// The boot files, built once per test process into `target/<profile>/guest/`
/// (overwritten by the next build, so nothing accumulates).
pub fn boot_files() -> &'static BootFiles {
    static FILES: OnceLock<BootFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        let exe = std::env::current_exe().expect("current exe");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .join("guest");
        std::fs::create_dir_all(&dir).expect("create the guest dir");
        initramfs::build(&dir).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Whether guests can be booted here; else what is missing and its Debian
/// package. Tests skip loudly without them, and fail under `CI=true`
/// (`.ci/run` installs them).
pub fn available() -> Result<(), String> {
    bulkhead_guest::check_host().map_err(|e| e.to_string())
}

/// A running guest whose failures panic with its console.
#[derive(Debug)]
pub struct Guest(pub bulkhead_guest::Guest);

impl Deref for Guest {
    type Target = bulkhead_guest::Guest;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Guest {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Guest {
    /// The value of `r`, or a panic naming `e` and the console so far.
    #[track_caller]
    pub fn must<T>(&self, r: Result<T, GuestError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}\n--- console of {}:\n{}", self.name, self.console()))
    }

    /// Boots a guest on the TAP `tap` of the host namespace pinned at
    /// `host` with NIC MAC `mac`, and waits until its shell reads commands.
    pub fn boot(name: &str, host: &Path, tap: &str, mac: &str) -> Guest {
        let mut g = Guest::spawn(name, host, tap, mac);
        g.wait_ready();
        g
    }

    /// Starts QEMU without waiting for the boot.
    pub fn spawn(name: &str, host: &Path, tap: &str, mac: &str) -> Guest {
        bulkhead_guest::Guest::spawn(name, boot_files(), host, tap, mac)
            .map(Guest)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until the guest's shell reads commands.
    #[track_caller]
    pub fn wait_ready(&mut self) {
        let r = self.0.wait_ready();
        let took = self.must(r);
        eprintln!("guest {} booted in {took:?}", self.name);
    }

    /// [`bulkhead_guest::Guest::sh`]; panics when the guest does not answer.
    #[track_caller]
    pub fn sh(&mut self, cmd: &str, timeout: Duration) -> (String, i32) {
        let r = self.0.sh(cmd, timeout);
        self.must(r)
    }

    /// A command that must succeed; its output.
    #[track_caller]
    pub fn ok(&mut self, cmd: &str) -> String {
        let r = self.0.ok(cmd);
        self.must(r)
    }

    /// Static addressing of eth0.
    #[track_caller]
    pub fn set_address(&mut self, addr: &str, prefix: u8, gateway: &str) {
        let r = self.0.set_address(addr, prefix, gateway);
        self.must(r)
    }

    /// The address leased by DHCP, `None` when no server answered.
    #[track_caller]
    pub fn dhcp(&mut self) -> Option<String> {
        let r = self.0.dhcp();
        self.must(r)
    }

    /// Whether one ping from the guest to `to` is answered.
    #[track_caller]
    pub fn ping(&mut self, to: &str) -> bool {
        let r = self.0.ping(to);
        self.must(r)
    }

    /// Changes eth0's MAC.
    #[track_caller]
    pub fn set_mac(&mut self, mac: &str) {
        let r = self.0.set_mac(mac);
        self.must(r)
    }
}
