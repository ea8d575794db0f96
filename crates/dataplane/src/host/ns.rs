//! The host kernel's namespace checks (adoption, `docs/design.md`): which
//! namespaces are never adopted, identities, checked opens, the settings an
//! adopted namespace gets, and bringing a port into service once its tables
//! are in (fail closed).

use std::path::Path;

use super::{err, HostKernel};
use crate::kernel::{KernelError, NetnsHandle, NetnsId, PortAttach, PortSpec, Protected, Result};
use crate::rtnl::{Batch, Route};
use crate::{netns, sysctl};

/// The namespaces of [`crate::kernel::Kernel::protected_netns`], as seen now: the host
/// namespace (`host`, or the calling thread's own), the process's own (its
/// main thread's: another thread may have entered some other namespace)
/// and the root one. One that cannot be read (no `/proc/1` access in a
/// restricted container) is left out, loudly.
pub(super) fn protected_now(host: Option<&Path>) -> Vec<(NetnsId, Protected)> {
    let thread_self = Path::new("/proc/thread-self/ns/net");
    let mut out = Vec::new();
    for (path, why) in [
        (Path::new("/proc/1/ns/net"), Protected::Root),
        (host.unwrap_or(thread_self), Protected::Host),
        (Path::new("/proc/self/ns/net"), Protected::Daemon),
    ] {
        match netns::identity(path) {
            Ok(id) => out.push((id, why)),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot identify {why}"),
        }
    }
    out
}

/// Strict TCP tracking in `netns`: a segment of a connection conntrack does
/// not know (one whose entry was deleted because a new rule refuses it) is
/// invalid, not picked up mid-stream as a new flow that the endpoint's own
/// reply would revive.
pub(super) fn strict_tcp(netns: &Path) -> Result<()> {
    sysctl::write(Some(netns), TCP_LOOSE, "0").map_err(err)
}

const TCP_LOOSE: &str = "net.netfilter.nf_conntrack_tcp_loose";

/// [`strict_tcp`] in the namespace the calling thread is in (one it just
/// made, see [`crate::netns::create_with`]).
pub(super) fn strict_tcp_here() -> Result<()> {
    sysctl::write(None, TCP_LOOSE, "0").map_err(err)
}

/// The identity of the network namespace at `path`.
pub(super) fn identify(path: &Path) -> Result<NetnsId> {
    netns::identity(path).map_err(|e| KernelError::new(format!("netns {}: {e}", path.display())))
}

/// Opens `path` and checks the opened file is namespace `expected`.
pub(super) fn open_checked(path: &Path, expected: NetnsId) -> Result<NetnsHandle> {
    let (file, id) = netns::open_identified(path)
        .map_err(|e| KernelError::new(format!("netns {}: {e}", path.display())))?;
    if id != expected {
        return Err(KernelError::new(format!(
            "netns {}: is namespace {id} now, not the adopted {expected} (re-bound?); \
             refusing to program it",
            path.display()
        )));
    }
    Ok(NetnsHandle::held(file))
}

impl HostKernel {
    /// [`crate::kernel::Kernel::enable_port`]: up, then (routed) the host route, which the
    /// kernel refuses on a down device.
    pub(super) fn enable_port_steps(&self, spec: &PortSpec) -> Result<()> {
        let port = spec.switch_port.as_str();
        let mut rtnl = self.rtnl();
        let mut b = Batch::new();
        b.set_up(port);
        let found = rtnl.execute_and_find(&b, &[port]).map_err(err)?;
        let index = found
            .first()
            .cloned()
            .flatten()
            .map(|l| l.index)
            .ok_or_else(|| KernelError::new(format!("find link {port}: gone")))?;
        if matches!(spec.attach, PortAttach::Bridge { .. }) {
            return Ok(());
        }
        let mut routes = Batch::new();
        routes.add_route(&Route::host(spec.address, index));
        match rtnl.execute(&routes) {
            Err(e) if !e.is_exists() => Err(err(e)),
            _ => Ok(()),
        }
    }
}
