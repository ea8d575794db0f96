//! Binding the daemon's Unix socket safely.
//!
//! The socket appears at its path already with its final mode: it is bound
//! under a temporary name in the same directory with the process umask set
//! to 077 for the `bind` (so the inode is born 0600: no instant at which it
//! is wider, as binding then chmod-ing would leave), given its group and
//! mode (0600, or 0660 owned by root and the API group), then renamed into
//! place. A missing parent directory is created with mode 0700 (0750 with
//! the API group as its group, so members can reach the socket); an existing
//! one is left as it is. The file mode is only the first fence: the server
//! checks every peer's credentials (`crate::gate`). A leftover socket file is removed only
//! when nothing answers on it; a live socket or a non-socket file at the path
//! is an error, never overwritten.

use std::fs;
use std::io;
use std::os::unix::fs::{chown, DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The socket path used when none is given.
pub const DEFAULT_SOCKET: &str = "/run/bulkhead/bulkhead.sock";

/// Why the socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another process already serves on the path.
    #[error("another process is already listening on {path}")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not a socket sits at the path.
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket {
        /// The socket path.
        path: PathBuf,
    },
    /// The path has no file name or no parent directory.
    #[error("invalid socket path {path}")]
    BadPath {
        /// The socket path.
        path: PathBuf,
    },
    /// A filesystem or socket call failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BindError {
    let path = path.to_owned();
    move |source| BindError::Io {
        action,
        path,
        source,
    }
}

/// Binds a listening socket at `path`, mode 0600 or, with `group`, 0660
/// owned by root and `group` (see the module docs).
pub fn bind_socket(path: &Path, group: Option<u32>) -> Result<UnixListener, BindError> {
    let bad = || BindError::BadPath {
        path: path.to_owned(),
    };
    let file_name = path.file_name().ok_or_else(bad)?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        Some(_) => Path::new("."),
        None => return Err(bad()),
    };
    if !parent.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(if group.is_some() { 0o750 } else { 0o700 })
            .create(parent)
            .map_err(io_err("create directory", parent))?;
        if let Some(gid) = group {
            chown(parent, None, Some(gid)).map_err(io_err("chown", parent))?;
        }
    } else if let Some(gid) = group {
        // An existing directory is the administrator's: left as it is, but
        // say so when the API group cannot pass through it.
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = fs::metadata(parent) {
            let mode = meta.mode();
            let passes = mode & 0o001 != 0 || (meta.gid() == gid && mode & 0o010 != 0);
            if !passes {
                tracing::warn!(
                    dir = %parent.display(),
                    gid,
                    "the API group cannot reach the socket through this directory"
                );
            }
        }
    }
    remove_stale(path)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = parent.join(tmp_name);
    let _ = fs::remove_file(&tmp);
    let listener = bind_private(&tmp)?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    let placed = group
        .map_or(Ok(()), |gid| chown(&tmp, None, Some(gid)))
        .map_err(io_err("chown", &tmp))
        .and_then(|()| {
            fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
                .map_err(io_err("chmod", &tmp))
        })
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err("rename socket to", path)));
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    listener
        .set_nonblocking(true)
        .map_err(io_err("configure", path))?;
    Ok(listener)
}

/// `bind` under umask 077, so the socket inode is created mode 0600. The
/// umask is process-wide: it is restored at once, and the daemon binds
/// before it starts any thread that creates files.
fn bind_private(path: &Path) -> Result<UnixListener, BindError> {
    use nix::sys::stat::{umask, Mode};
    let old = umask(Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(path);
    umask(old);
    bound.map_err(io_err("bind", path))
}

/// Removes a socket file at `path` if nothing listens on it.
fn remove_stale(path: &Path) -> Result<(), BindError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("inspect", path)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket {
            path: path.to_owned(),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(BindError::InUse {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale socket");
            fs::remove_file(path).map_err(io_err("remove stale socket", path))
        }
        Err(e) => Err(io_err("probe", path)(e)),
    }
}
