//! The guest's boot files, built on the machine with no downloads: the
//! Debian kernel from `/boot` and an initramfs (a newc cpio, written here)
//! holding `busybox-static`, the virtio-net modules of that kernel (with
//! their dependencies from `modules.dep`, `.ko.xz` decompressed by the `xz`
//! tool: busybox `insmod` may not read xz) and an `/init` script.
//!
//! `/init` loads the modules, brings `lo` and `eth0` up, prints
//! [`READY`] and then runs a shell reading the serial console, its output
//! piped through `cat` (`sh | cat`): with stdout not a terminal the shell is
//! not interactive (no prompt, no line editing; background jobs get
//! `/dev/null` as stdin), and the console's echo is off, so what the test
//! reads is exactly what the commands print. (Tried and dropped: `cat | sh`,
//! where every other line waited in the pipe until the next one came, and
//! `sh +i`, which still prompted and edited lines.)

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{GuestError, Result};

/// Printed by `/init` once the NIC is up and the shell reads commands.
pub const READY: &str = "BHT-GUEST-READY";

/// The virtio-net driver and what it needs (issue 14's list, dependencies
/// resolved from `modules.dep`).
const MODULES: [&str; 8] = [
    "failover",
    "net_failover",
    "virtio",
    "virtio_ring",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "virtio_net",
];

/// The udhcpc hook: configures the lease (`$ip`, `$mask` as a prefix
/// length, the first `$router`) and prints it for the test.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
bound|renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/$mask" dev "$interface"
  for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
  : > /etc/resolv.conf
  for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
  echo "LEASE ip=$ip mask=$mask router=$router dns=$dns"
  ;;
esac
"#;

/// A kernel and its initramfs.
#[derive(Debug, Clone)]
pub struct BootFiles {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// Where the guest's busybox comes from (Debian `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// The newest `/boot/vmlinuz-<version>` that has `/lib/modules/<version>`.
pub(crate) fn guest_kernel() -> Result<(PathBuf, String)> {
    let missing = || GuestError::Missing {
        what: "a kernel in /boot with its modules in /lib/modules".into(),
        package: "linux-image-amd64",
    };
    let mut found: Vec<(PathBuf, String)> = fs::read_dir("/boot")
        .map_err(|_| missing())?
        .filter_map(std::result::Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = name.strip_prefix("vmlinuz-")?.to_owned();
            Path::new("/lib/modules")
                .join(&version)
                .join("modules.dep")
                .exists()
                .then(|| (e.path(), version))
        })
        .collect();
    found.sort();
    found.pop().ok_or_else(missing)
}

/// The bytes of `path` when it is a statically linked ELF executable (no
/// `PT_INTERP` program header): the guest has no dynamic loader or libc,
/// and Debian's dynamic `busybox` installs the same path.
pub(crate) fn static_busybox(path: &Path) -> Result<Vec<u8>> {
    let missing = || GuestError::Missing {
        what: format!("a statically linked {}", path.display()),
        package: "busybox-static",
    };
    let elf = fs::read(path).map_err(|_| missing())?;
    let word = |at: usize, n: usize| -> Option<u64> {
        let b = elf.get(at..at + n)?;
        Some(b.iter().rev().fold(0, |v, &x| (v << 8) | u64::from(x)))
    };
    // ELF64, little-endian (x86-64): e_phoff at 32, e_phentsize at 54,
    // e_phnum at 56; p_type is the first word of each program header.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return Err(missing());
    }
    let (Some(phoff), Some(size), Some(count)) = (word(32, 8), word(54, 2), word(56, 2)) else {
        return Err(missing());
    };
    const PT_INTERP: u64 = 3;
    let dynamic = (0..count).any(|i| {
        usize::try_from(phoff + i * size)
            .ok()
            .and_then(|at| word(at, 4))
            == Some(PT_INTERP)
    });
    if dynamic {
        return Err(missing());
    }
    Ok(elf)
}

/// The modules to load, dependencies first, as paths under `moddir`.
fn load_order(moddir: &Path) -> io::Result<Vec<String>> {
    let dep = fs::read_to_string(moddir.join("modules.dep"))?;
    let deps_of = |name: &str| -> Option<(String, Vec<String>)> {
        dep.lines().find_map(|l| {
            let (path, deps) = l.split_once(':')?;
            let file = path.rsplit('/').next()?;
            let stem = file.split(".ko").next()?;
            (stem == name || stem.replace('-', "_") == name).then(|| {
                (
                    path.to_owned(),
                    deps.split_whitespace().map(str::to_owned).collect(),
                )
            })
        })
    };
    let mut order: Vec<String> = Vec::new();
    for m in MODULES {
        let (path, deps) = deps_of(m).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("module {m} not in modules.dep"),
            )
        })?;
        // modules.dep lists every (transitive) dependency, the deepest
        // last: load them from the end.
        for p in deps.into_iter().rev().chain([path]) {
            if !order.contains(&p) {
                order.push(p);
            }
        }
    }
    Ok(order)
}

/// A module's bytes, decompressed when it is `.ko.xz`.
fn module_bytes(path: &Path) -> Result<Vec<u8>> {
    let failed = |e: io::Error| GuestError::Build(format!("read {}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "xz") {
        let out = Command::new("xz")
            .arg("-dc")
            .arg(path)
            .output()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => GuestError::Missing {
                    what: "xz (the kernel's modules are xz-compressed)".into(),
                    package: "xz-utils",
                },
                _ => failed(e),
            })?;
        if !out.status.success() {
            return Err(GuestError::Build(format!(
                "xz -dc {} failed",
                path.display()
            )));
        }
        return Ok(out.stdout);
    }
    fs::read(path).map_err(failed)
}

/// newc cpio: one header per entry, names and data padded to 4 bytes.
struct Cpio<W: Write> {
    out: W,
    ino: u32,
}

impl<W: Write> Cpio<W> {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.ino += 1;
        let namesize = name.len() + 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            namesize,
            0
        );
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        let pad = |n: usize| (4 - n % 4) % 4;
        self.out.write_all(&[0; 3][..pad(110 + namesize)])?;
        self.out.write_all(data)?;
        self.out.write_all(&[0; 3][..pad(data.len())])
    }

    fn dir(&mut self, name: &str) -> io::Result<()> {
        self.entry(name, 0o040_755, &[])
    }

    fn file(&mut self, name: &str, exec: bool, data: &[u8]) -> io::Result<()> {
        self.entry(name, if exec { 0o100_755 } else { 0o100_644 }, data)
    }

    fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, &[])?;
        Ok(self.out)
    }
}

/// The `/init` script, loading `modules` (file names under /lib/modules).
fn init_script(modules: &[String]) -> String {
    let insmods: String = modules
        .iter()
        .map(|m| format!("insmod /lib/modules/{m} || echo \"insmod {m} failed\"\n"))
        .collect();
    format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         export PATH=/bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sys /sys\n\
         mount -t devtmpfs dev /dev\n\
         {insmods}\
         ip link set lo up\n\
         ip link set eth0 up\n\
         stty -F /dev/console -echo\n\
         echo {READY}\n\
         sh 2>&1 | cat\n\
         poweroff -f\n"
    )
}

/// Builds the boot files in `dir` (an existing directory).
pub fn build(dir: &Path) -> Result<BootFiles> {
    let (kernel, version) = guest_kernel()?;
    let moddir = Path::new("/lib/modules").join(&version);
    let order =
        load_order(&moddir).map_err(|e| GuestError::Build(format!("{}: {e}", moddir.display())))?;
    let busybox = static_busybox(Path::new(BUSYBOX))?;
    let initrd = dir.join("initrd.cpio");
    write_initrd(dir, &initrd, &moddir, &order, &busybox)?;
    Ok(BootFiles { kernel, initrd })
}

/// Writes the initramfs to `initrd`.
fn write_initrd(
    dir: &Path,
    initrd: &Path,
    moddir: &Path,
    order: &[String],
    busybox: &[u8],
) -> Result<()> {
    let io = |e: io::Error| GuestError::Build(format!("write {}: {e}", initrd.display()));
    // Written aside and renamed: another test process may be booting a
    // guest from the previous one.
    let partial = dir.join(format!("initrd.cpio.{}", std::process::id()));
    let mut c = Cpio {
        out: io::BufWriter::new(fs::File::create(&partial).map_err(io)?),
        ino: 0,
    };
    for d in [
        "bin",
        "dev",
        "etc",
        "proc",
        "sys",
        "tmp",
        "lib",
        "lib/modules",
    ] {
        c.dir(d).map_err(io)?;
    }
    c.file("bin/busybox", true, busybox).map_err(io)?;
    let mut names = Vec::new();
    for rel in order {
        let bytes = module_bytes(&moddir.join(rel))?;
        let file = rel.rsplit('/').next().unwrap_or(rel);
        let name = file.trim_end_matches(".xz").to_owned();
        c.file(&format!("lib/modules/{name}"), false, &bytes)
            .map_err(io)?;
        names.push(name);
    }
    c.file("init", true, init_script(&names).as_bytes())
        .map_err(io)?;
    c.file("etc/udhcpc.script", true, UDHCPC_SCRIPT.as_bytes())
        .map_err(io)?;
    c.finish().and_then(|mut w| w.flush()).map_err(io)?;
    fs::rename(&partial, initrd).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dynamically linked executable (this test binary itself) or a
    /// non-ELF file is refused as the guest's busybox, naming the package.
    #[test]
    fn only_a_static_busybox_is_taken() {
        let me = std::env::current_exe().expect("current exe");
        for not_static in [
            me.as_path(),
            Path::new("/etc/passwd"),
            Path::new("/nonexistent"),
        ] {
            let e = static_busybox(not_static).expect_err("refused");
            assert!(
                e.to_string()
                    .ends_with("(install the Debian package busybox-static)"),
                "{}: {e}",
                not_static.display()
            );
        }
        if Path::new(BUSYBOX).exists() {
            if let Err(e) = static_busybox(Path::new(BUSYBOX)) {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI installs busybox-static: {e}"
                );
            }
        }
    }
}
