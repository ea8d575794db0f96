//! `net.*` sysctls of one network namespace.
//!
//! Contract: a name is `net.` followed by components of `[a-z0-9_-]`
//! separated by `.`, or the same with `/` separators (then a `.` is part of a
//! component, as in interface names like `eth0.100`); `..` and empty
//! components are refused before any file is touched. The file is opened
//! under `/proc/sys/` from a thread that entered the target namespace, since
//! `/proc/sys/net` shows the namespace of the task that opens it; the
//! caller's own namespace is never read or written unless `netns` is `None`.

use std::io;
use std::path::{Path, PathBuf};

use crate::netns;

/// What failed, on which sysctl.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("invalid sysctl name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid value {value:?} for sysctl {name}: it must not contain a newline")]
    InvalidValue { name: String, value: String },
    #[error("{op} sysctl {name}: {source}")]
    Io {
        op: &'static str,
        name: String,
        source: io::Error,
    },
}

/// Maps a validated sysctl name to its file under `/proc/sys`.
pub fn path_of(name: &str) -> Result<PathBuf, SysctlError> {
    let bad = |reason| SysctlError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.len() > 256 {
        return Err(bad("longer than 256 bytes"));
    }
    let allowed = |c: char| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '/' | '-');
    if !name.chars().all(allowed) {
        return Err(bad("only [a-z0-9_./-] are allowed"));
    }
    let sep = if name.contains('/') { '/' } else { '.' };
    let parts: Vec<&str> = name.split(sep).collect();
    if parts.first() != Some(&"net") || parts.len() < 2 {
        return Err(bad("only net.* sysctls are allowed"));
    }
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(bad("empty, '.' and '..' components are not allowed"));
    }
    let mut path = PathBuf::from("/proc/sys");
    path.extend(parts);
    Ok(path)
}

fn in_netns<R: Send>(
    netns: Option<&Path>,
    op: &'static str,
    name: &str,
    f: impl FnOnce() -> io::Result<R> + Send,
) -> Result<R, SysctlError> {
    let err = |source| SysctlError::Io {
        op,
        name: name.to_owned(),
        source,
    };
    match netns {
        Some(_) => netns::run_in(netns, f).map_err(err)?.map_err(err),
        None => f().map_err(err),
    }
}

/// Reads a sysctl in `netns` (`None`: the caller's namespace), trimmed.
pub fn read(netns: Option<&Path>, name: &str) -> Result<String, SysctlError> {
    let path = path_of(name)?;
    in_netns(netns, "read", name, move || {
        std::fs::read_to_string(&path).map(|s| s.trim_end().to_owned())
    })
}

/// Writes a sysctl in `netns` (`None`: the caller's namespace).
pub fn write(netns: Option<&Path>, name: &str, value: &str) -> Result<(), SysctlError> {
    write_all(netns, &[(name, value)])
}

/// Writes several sysctls in `netns` with one namespace entry, in order;
/// stops at the first failure.
pub fn write_all(netns: Option<&Path>, settings: &[(&str, &str)]) -> Result<(), SysctlError> {
    write_files(netns, settings, path_of)
}

/// [`write_all`] with each setting's file found by `path`.
fn write_files(
    netns: Option<&Path>,
    settings: &[(&str, &str)],
    path: impl Fn(&str) -> Result<PathBuf, SysctlError>,
) -> Result<(), SysctlError> {
    let mut files = Vec::with_capacity(settings.len());
    for (name, value) in settings {
        if value.contains('\n') {
            return Err(SysctlError::InvalidValue {
                name: (*name).to_owned(),
                value: (*value).to_owned(),
            });
        }
        files.push((*name, path(name)?, *value));
    }
    let names: Vec<&str> = settings.iter().map(|(n, _)| *n).collect();
    let failed = in_netns(netns, "write", &names.join(","), move || {
        for (name, path, value) in files {
            if let Err(e) = std::fs::write(&path, value) {
                return Ok(Some((name, e)));
            }
        }
        Ok(None)
    })?;
    match failed {
        Some((name, source)) => Err(SysctlError::Io {
            op: "write",
            name: name.to_owned(),
            source,
        }),
        None => Ok(()),
    }
}

/// `/proc/sys/net` of one namespace, opened once and kept: every later
/// read or write resolves its path from this directory.
///
/// Why: each network namespace that ever read a sysctl leaves its own
/// `/proc/sys/net` entry in the kernel's dentry cache, all under one name
/// and parent, so an open of `/proc/sys/net/...` walks a hash chain as long
/// as the number of namespaces (`proc_sys_compare`): with a thousand
/// endpoints, opening a switch port's settings by full path was one of the
/// costs that grew with every endpoint. From a kept directory the walk
/// starts below that entry. Reads and writes still run with the calling
/// thread inside the namespace (the kernel shows a namespace's entries to
/// its own tasks only).
#[derive(Debug)]
pub struct NetDir {
    dir: std::fs::File,
    netns: Option<PathBuf>,
}

impl NetDir {
    /// Opens `/proc/sys/net` of `netns` (`None`: the caller's namespace).
    pub fn open(netns: Option<&Path>) -> Result<Self, SysctlError> {
        let dir = in_netns(netns, "open", "net", || {
            std::fs::File::open("/proc/sys/net")
        })?;
        Ok(Self {
            dir,
            netns: netns.map(Path::to_path_buf),
        })
    }

    /// The path of `name` (validated as [`path_of`]) through the kept
    /// directory: `/proc/self/fd/<dir>/ipv4/...`. The kernel resolves the
    /// descriptor's link to the directory itself, so the lookup starts
    /// below the namespace's `net` entry.
    fn through_dir(&self, name: &str) -> Result<PathBuf, SysctlError> {
        use std::os::fd::AsRawFd;
        let path = path_of(name)?;
        let rel = path
            .strip_prefix("/proc/sys/net")
            .expect("path_of starts every path with /proc/sys/net");
        Ok(Path::new("/proc/self/fd")
            .join(self.dir.as_raw_fd().to_string())
            .join(rel))
    }

    /// Reads a sysctl of this namespace, trimmed.
    pub fn read(&self, name: &str) -> Result<String, SysctlError> {
        let path = self.through_dir(name)?;
        in_netns(self.netns.as_deref(), "read", name, move || {
            std::fs::read_to_string(&path).map(|s| s.trim_end().to_owned())
        })
    }

    /// Writes several sysctls of this namespace with one namespace entry,
    /// in order; stops at the first failure.
    pub fn write_all(&self, settings: &[(&str, &str)]) -> Result<(), SysctlError> {
        write_files(self.netns.as_deref(), settings, |name| {
            self.through_dir(name)
        })
    }

    /// Writes one sysctl of this namespace.
    pub fn write(&self, name: &str, value: &str) -> Result<(), SysctlError> {
        self.write_all(&[(name, value)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_proc_sys() {
        let p = path_of("net.ipv4.conf.bhp0123456789.proxy_arp").unwrap();
        assert_eq!(
            p,
            Path::new("/proc/sys/net/ipv4/conf/bhp0123456789/proxy_arp")
        );
        let p = path_of("net/ipv4/conf/eth0.100/forwarding").unwrap();
        assert_eq!(p, Path::new("/proc/sys/net/ipv4/conf/eth0.100/forwarding"));
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "net/../kernel/x",
            "net..ipv4",
            "kernel.hostname",
            "net",
            "net.ipv4.IP",
            "net.ipv4 .x",
            "/net/ipv4",
            "net/ipv4/",
        ] {
            assert!(path_of(bad).is_err(), "{bad} accepted");
        }
    }
}
