//! Named network namespaces, bind-mounted under `/run/netns/` the way iproute2
//! does it, so `ip netns exec` works on them too.
//!
//! Contract: [`create`] makes a fresh namespace and pins it at
//! `/run/netns/NAME`; [`delete`] unpins it (the kernel frees it, and the links
//! inside it, once nothing else holds it). [`run_in`] runs a closure with the
//! calling thread switched into the namespace and switches it back before
//! returning (also on a panic); sockets opened there keep belonging to that
//! namespace afterwards, which is how every netlink socket of bulkhead
//! reaches a namespace other than its own.
//!
//! Why the caller's own thread and not a fresh one per call: a thread spawn
//! and join costs a `clone3`, a stack mapping and two futex hand-offs, and
//! was most of what a namespace switch cost on the API path (two to three
//! per operation); `setns` in and out is two system calls. A thread that
//! cannot be switched back is not survivable (it would act on the wrong
//! namespace later), so that case aborts the process, loudly.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Where named namespaces are pinned.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// The path a named namespace is pinned at.
pub fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Makes sure `/run/netns` exists and is a shared mount point, as iproute2
/// does, so that pins made later propagate to other mount namespaces.
fn prepare_run_dir() -> io::Result<()> {
    std::fs::create_dir_all(NETNS_RUN_DIR)?;
    let flags = MsFlags::MS_SHARED | MsFlags::MS_REC;
    if mount(
        None::<&str>,
        NETNS_RUN_DIR,
        None::<&str>,
        flags,
        None::<&str>,
    )
    .is_ok()
    {
        return Ok(());
    }
    mount(
        Some(NETNS_RUN_DIR),
        NETNS_RUN_DIR,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(errno)?;
    mount(
        None::<&str>,
        NETNS_RUN_DIR,
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(errno)
}

/// Creates the namespace `name` and pins it at `/run/netns/NAME`.
/// Fails with `AlreadyExists` if the pin exists.
pub fn create(name: &str) -> io::Result<PathBuf> {
    create_with(name, || ()).map(|(path, ())| path)
}

/// [`create`], and `ready` run on the calling thread while it is still
/// inside the new namespace, before it goes home: sockets it opens and
/// `/proc/sys/net` files it writes belong to the new namespace without
/// entering it again (one entry instead of one per socket or setting).
/// `ready`'s result is returned as is; undoing the namespace if that result
/// says it failed is the caller's call. A panic in `ready` still returns
/// the thread home (the pin stays).
pub fn create_with<R>(name: &str, ready: impl FnOnce() -> R) -> io::Result<(PathBuf, R)> {
    let path = new_pin(name)?;
    // The calling thread makes the namespace and pins it, then goes home.
    let made = Entered::home().and_then(|home| {
        unshare(CloneFlags::CLONE_NEWNET).map_err(errno)?;
        bind("/proc/thread-self/ns/net", &path)?;
        let out = ready();
        drop(home);
        Ok(out)
    });
    or_unpin(&path, made).map(|out| (path, out))
}

/// Makes a fresh namespace that no pin holds, for [`pin`] later: the
/// calling thread enters it, runs `ready` there (as in [`create_with`]),
/// and goes home. The namespace lives as long as the returned file or
/// anything `ready` opened in it.
pub fn create_unpinned<R>(ready: impl FnOnce() -> R) -> io::Result<(File, R)> {
    let home = Entered::home()?;
    unshare(CloneFlags::CLONE_NEWNET).map_err(errno)?;
    let ns = File::open("/proc/thread-self/ns/net")?;
    let out = ready();
    drop(home);
    Ok((ns, out))
}

/// Pins the namespace `ns` (from [`create_unpinned`]) at
/// `/run/netns/NAME`, as [`create`] would have. Fails with
/// `AlreadyExists` if the pin exists; on any failure nothing is left.
pub fn pin(name: &str, ns: &File) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    let path = new_pin(name)?;
    let bound = bind(&format!("/proc/self/fd/{}", ns.as_raw_fd()), &path);
    or_unpin(&path, bound).map(|()| path)
}

/// Makes the empty pin file `/run/netns/NAME`; fails with `AlreadyExists`
/// if it exists.
fn new_pin(name: &str) -> io::Result<PathBuf> {
    prepare_run_dir()?;
    let path = path_of(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok(path)
}

/// `made`, with the pin file at `path` removed again if it failed.
fn or_unpin<T>(path: &Path, made: io::Result<T>) -> io::Result<T> {
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Bind-mounts the namespace file `source` onto the pin `path`.
fn bind(source: &str, path: &Path) -> io::Result<()> {
    mount(
        Some(source),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(errno)
}

/// Mounts stacked on one pin that [`delete`] takes off before giving up.
const MAX_STACKED: usize = 16;

/// Unpins the namespace `name`. A namespace that is not there is not an
/// error. Every mount stacked on the pin goes (a pin mounted twice, e.g.
/// through mount propagation, would otherwise stay busy and unremovable).
pub fn delete(name: &str) -> io::Result<()> {
    let path = path_of(name);
    for _ in 0..MAX_STACKED {
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => break,
            Err(e) => return Err(errno(e)),
        }
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether a namespace is pinned under `name`.
pub fn exists(name: &str) -> bool {
    path_of(name).exists()
}

/// Whether the pin `name` holds a network namespace (an nsfs inode), not
/// a bare file. Every nsfs inode lives on the one nsfs superblock, so the
/// device of our own `/proc/self/ns/net` tells.
pub fn is_pinned(name: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path_of(name)),
        std::fs::metadata("/proc/self/ns/net"),
    ) {
        (Ok(pin), Ok(own)) => pin.dev() == own.dev() && pin.is_file(),
        _ => false,
    }
}

/// Names of the namespaces pinned under `/run/netns` whose name starts with `prefix`.
pub fn list(prefix: &str) -> io::Result<Vec<String>> {
    let dir = match std::fs::read_dir(NETNS_RUN_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in dir {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Runs `f` with the calling thread inside the network namespace at
/// `netns` (a pin such as `/run/netns/NAME` or `/proc/PID/ns/net`), and
/// switches the thread back to its own namespace before returning, also
/// when `f` panics. `None` runs `f` in the caller's own namespace.
pub fn run_in<R, F>(netns: Option<&Path>, f: F) -> io::Result<R>
where
    F: FnOnce() -> R,
{
    let Some(path) = netns else {
        return Ok(f());
    };
    let target = File::open(path)?;
    let home = Entered::home()?;
    setns(&target, CloneFlags::CLONE_NEWNET).map_err(errno)?;
    let out = f();
    drop(home);
    Ok(out)
}

/// The calling thread's own namespace, re-entered when this is dropped:
/// whatever the thread does in between (enter another namespace, make a
/// new one), it leaves in the namespace it came from.
struct Entered {
    home: File,
}

impl Entered {
    fn home() -> io::Result<Self> {
        Ok(Self {
            home: File::open("/proc/thread-self/ns/net")?,
        })
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.home, CloneFlags::CLONE_NEWNET) {
            // Going on would let this thread program some other namespace
            // as if it were its own.
            tracing::error!(error = %e, "cannot return a thread to its own network namespace");
            eprintln!("bulkhead: cannot return a thread to its network namespace: {e}; aborting");
            std::process::abort();
        }
    }
}

/// A namespace that is deleted when dropped: for tests and for operations
/// that must undo a half-made namespace.
#[derive(Debug)]
pub struct NetnsGuard {
    name: String,
    path: PathBuf,
}

impl NetnsGuard {
    /// Creates the namespace `name` (see [`create`]).
    pub fn create(name: &str) -> io::Result<Self> {
        let path = create(name)?;
        Ok(Self {
            name: name.to_owned(),
            path,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = delete(&self.name) {
            tracing::warn!(netns = %self.name, error = %e, "could not delete namespace");
        }
    }
}

/// Opens the namespace file at `path` and returns it with its identity;
/// fails unless it is a *network* namespace (an nsfs file of another type,
/// or any other file, is refused).
pub fn open_identified(path: &Path) -> io::Result<(File, crate::kernel::NetnsId)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let file = File::open(path)?;
    let kind = crate::sys::ns_type(file.as_fd())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not a namespace file"))?;
    if kind != libc::CLONE_NEWNET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a network namespace",
        ));
    }
    let meta = file.metadata()?;
    let id = crate::kernel::NetnsId {
        dev: meta.dev(),
        ino: meta.ino(),
    };
    Ok((file, id))
}

/// The identity of the network namespace at `path` (see [`open_identified`]).
pub fn identity(path: &Path) -> io::Result<crate::kernel::NetnsId> {
    open_identified(path).map(|(_, id)| id)
}
