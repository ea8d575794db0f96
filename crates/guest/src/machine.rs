//! Real QEMU guests on a bulkhead vm endpoint's TAP switch port.
//!
//! A [`Guest`] is `qemu-system-x86_64` under TCG (no KVM on CI) booting the
//! Debian kernel from `/boot` with the initramfs of [`crate::initramfs`], its NIC a
//! `virtio-net-pci` with the endpoint's MAC on the endpoint's TAP:
//!
//! ```text
//! qemu-system-x86_64 -accel tcg -m 128 -smp 1 \
//!   -nodefaults -no-user-config -display none -no-reboot -serial stdio \
//!   -kernel /boot/vmlinuz-<v> -initrd <dir>/initrd.cpio \
//!   -append "console=ttyS0 quiet loglevel=1 panic=-1 no_timer_check cryptomgr.notests mitigations=off" \
//!   -netdev tap,id=n0,ifname=<tap>,script=no,downscript=no \
//!   -device virtio-net-pci,netdev=n0,mac=<endpoint mac>,romfile=
//! ```
//!
//! QEMU runs in the host namespace the TAP is in (spawned from a thread
//! that entered it, which is what `nsenter --net=<pin>` does); the serial
//! console is QEMU's stdin/stdout, read by a thread into a buffer.
//! [`Guest::sh`] runs one shell command line in the guest and returns its
//! output and exit status, delimited by a marker the command cannot print
//! by accident. The guest is killed on drop (also on panic).
//! Boot files are built by [`crate::initramfs::build`].

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns;

use crate::initramfs::{BootFiles, READY};
use crate::{GuestError, Result};

/// How long a guest may take to boot (TCG on a loaded 2-core machine).
/// A guest alone boots in ~8 s of CPU (the kernel's crypto self-tests and
/// speculation mitigations are off: under TCG they cost a third of it).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// The kernel command line: serial console; only emergencies printed
/// (`loglevel=1`: a panic shows on the console, nothing else does); no
/// reboot on panic (with `-no-reboot` QEMU exits, reported at once);
/// `no_timer_check`: under TCG on a loaded host the boot's IO-APIC timer
/// check can miss its ticks and panic ("IO-APIC + timer doesn't work!",
/// seen with load average 15 on 2 cores); no crypto self-tests or
/// speculation mitigations (a third of a TCG boot).
const APPEND: &str =
    "console=ttyS0 quiet loglevel=1 panic=-1 no_timer_check cryptomgr.notests mitigations=off";

/// The console text read so far, and a wake-up for waiters.
#[derive(Debug, Default)]
struct Console {
    text: Mutex<String>,
    grew: Condvar,
}

/// A running guest.
#[derive(Debug)]
pub struct Guest {
    pub name: String,
    pub mac: String,
    child: Child,
    stdin: ChildStdin,
    console: Arc<Console>,
    /// Where the next command's output starts in the console text.
    cursor: usize,
    next: u32,
}

impl Guest {
    /// Boots a guest from `files` on the TAP `tap` of the network
    /// namespace pinned at `host`, with NIC MAC `mac`, and waits until its
    /// shell reads commands.
    pub fn boot(name: &str, files: &BootFiles, host: &Path, tap: &str, mac: &str) -> Result<Guest> {
        let mut g = Guest::spawn(name, files, host, tap, mac)?;
        g.wait_ready()?;
        Ok(g)
    }

    /// Starts QEMU without waiting for the boot (boot several, then
    /// [`Guest::wait_ready`] on each).
    pub fn spawn(
        name: &str,
        files: &BootFiles,
        host: &Path,
        tap: &str,
        mac: &str,
    ) -> Result<Guest> {
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args(["-accel", "tcg", "-m", "128", "-smp", "1"])
            .args(["-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-no-reboot", "-serial", "stdio"])
            .arg("-kernel")
            .arg(&files.kernel)
            .arg("-initrd")
            .arg(&files.initrd)
            .args(["-append", APPEND])
            .arg("-netdev")
            .arg(format!("tap,id=n0,ifname={tap},script=no,downscript=no"))
            .arg("-device")
            .arg(format!("virtio-net-pci,netdev=n0,mac={mac},romfile="))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The child is forked from this thread while it is in `host`, so
        // QEMU opens the TAP there.
        let mut child = netns::run_in(Some(host), || qemu.spawn())
            .and_then(|r| r)
            .map_err(GuestError::Spawn)?;
        let console = Arc::new(Console::default());
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|e| Box::new(e) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let console = console.clone();
            std::thread::spawn(move || pump(out, &console));
        }
        let Some(stdin) = child.stdin.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(GuestError::Spawn(std::io::Error::other("no stdin")));
        };
        Ok(Guest {
            name: name.to_owned(),
            mac: mac.to_owned(),
            child,
            stdin,
            console,
            cursor: 0,
            next: 0,
        })
    }

    /// Waits until `/init` printed [`READY`] and checks that every module
    /// loaded; how long it waited. A QEMU that exits meanwhile (a kernel
    /// panic reboots, and `-no-reboot` ends it) is reported at once.
    pub fn wait_ready(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let at = loop {
            if let Some(at) = self.wait_for(READY, Duration::from_secs(1)) {
                break at;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(GuestError::Exited {
                    name: self.name.clone(),
                    status: status.to_string(),
                });
            }
            if started.elapsed() > BOOT_TIMEOUT {
                return Err(GuestError::Boot {
                    name: self.name.clone(),
                    waited: BOOT_TIMEOUT,
                });
            }
        };
        self.cursor = at;
        if let Some(line) = self.console().lines().find(|l| l.contains("failed")) {
            return Err(GuestError::Module {
                name: self.name.clone(),
                line: line.trim().to_owned(),
            });
        }
        Ok(started.elapsed())
    }

    /// Everything the console printed so far (for failure messages).
    pub fn console(&self) -> String {
        self.console
            .text
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits up to `timeout` for `needle` after the cursor; the position
    /// right after it.
    fn wait_for(&self, needle: &str, timeout: Duration) -> Option<usize> {
        self.wait_from(self.cursor, needle, timeout)
    }

    /// [`Guest::wait_for`] from position `from`.
    fn wait_from(&self, from: usize, needle: &str, timeout: Duration) -> Option<usize> {
        let until = Instant::now() + timeout;
        let mut text = self.console.text.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(i) = text.get(from..).and_then(|t| t.find(needle)) {
                return Some(from + i + needle.len());
            }
            let left = until.checked_duration_since(Instant::now())?;
            text = self
                .console
                .grew
                .wait_timeout(text, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Runs `cmd` (one shell line, not ending in `&`; it must not read
    /// stdin: the shell's stdin is the console) and waits up to `timeout`;
    /// its output and exit status.
    pub fn sh(&mut self, cmd: &str, timeout: Duration) -> Result<(String, i32)> {
        self.next += 1;
        let n = self.next;
        // `"@@"E` prints as `@@E`: the command line itself never contains
        // the marker, should the console ever echo it.
        // One line per write: a second line sent while the first runs was
        // seen lost on the way through the console.
        let line = format!("{cmd}; echo \"@@\"E{n}=$?=\n");
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|source| GuestError::Console {
                name: self.name.clone(),
                source,
            })?;
        let marker = format!("@@E{n}=");
        let end = self
            .wait_for(&marker, timeout)
            .ok_or_else(|| GuestError::NoAnswer {
                name: self.name.clone(),
                cmd: cmd.to_owned(),
                timeout,
            })?;
        let closed = self
            .wait_from(end, "=", Duration::from_secs(5))
            .unwrap_or(end + 1);
        let text = self.console();
        let out = text[self.cursor..end - marker.len()].replace('\r', "");
        let status = text
            .get(end..closed - 1)
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(-1);
        self.cursor = closed;
        Ok((out, status))
    }

    /// [`Guest::sh`] that must succeed (30 s: TCG on a loaded machine); its
    /// output.
    pub fn ok(&mut self, cmd: &str) -> Result<String> {
        let (out, status) = self.sh(cmd, Duration::from_secs(30))?;
        if status != 0 {
            return Err(GuestError::Failed {
                name: self.name.clone(),
                cmd: cmd.to_owned(),
                status,
                out: out.trim().to_owned(),
            });
        }
        Ok(out)
    }

    /// Gives eth0 `addr/prefix` and a default route via `gateway` (static
    /// addressing).
    pub fn set_address(&mut self, addr: &str, prefix: u8, gateway: &str) -> Result<()> {
        self.ok(&format!(
            "ip addr flush dev eth0 && ip addr add {addr}/{prefix} dev eth0 && ip route replace default via {gateway} dev eth0"
        ))
        .map(drop)
    }

    /// Asks for a lease with udhcpc (3 tries, 2 s apart); the leased
    /// address, or `None` when no server answered. The hook configures the
    /// address, prefix, default route and DNS from the lease.
    pub fn dhcp(&mut self) -> Result<Option<String>> {
        let (out, _) = self.sh(
            "udhcpc -i eth0 -n -q -f -t 3 -T 2 -s /etc/udhcpc.script",
            Duration::from_secs(30),
        )?;
        Ok(out
            .lines()
            .find_map(|l| l.trim().strip_prefix("LEASE ip="))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned))
    }

    /// Whether one ping from the guest to `to` is answered (2 s).
    pub fn ping(&mut self, to: &str) -> Result<bool> {
        Ok(self
            .sh(&format!("ping -c1 -W2 {to}"), Duration::from_secs(30))?
            .1
            == 0)
    }

    /// Changes eth0's MAC (down, set, up).
    pub fn set_mac(&mut self, mac: &str) -> Result<()> {
        self.ok(&format!(
            "ip link set eth0 down && ip link set eth0 address {mac} && ip link set eth0 up"
        ))
        .map(drop)
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies `out` into the console buffer until it closes.
fn pump(mut out: Box<dyn Read + Send>, console: &Console) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = out.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut text = console.text.lock().unwrap_or_else(|p| p.into_inner());
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        console.grew.notify_all();
    }
}
