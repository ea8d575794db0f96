//! Who may use the API, and how many connections anyone may hold.
//!
//! Contract:
//! - Every accepted connection is identified by the kernel's credentials of
//!   the peer (`SO_PEERCRED`: uid, gid, pid at `connect()` time), never by
//!   anything the peer sends. The socket's file mode is a second fence, not
//!   the check: a socket made world-writable by mistake still serves only
//!   the uids [`Access`] allows.
//! - [`Access`] allows uid 0 and, when an API group is configured, a peer
//!   whose primary gid or one of whose supplementary groups is that group.
//!   Supplementary groups come from `SO_PEERGROUPS` (also a snapshot taken
//!   at `connect()`, so a recycled pid cannot lend its groups); kernels
//!   without it (before 4.13) fall back to `/proc/PID/status` `Groups:`.
//!   A peer whose groups cannot be read is refused.
//! - [`Limiter`] caps open connections: a total, and a per-uid share for
//!   every uid but 0, so one tenant holding connections open cannot take
//!   all of them from root. A connection over either cap is refused at once.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

/// The kernel's view of the process at the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    /// `None` when the peer is in a pid namespace we cannot see into.
    pub pid: Option<i32>,
    /// Supplementary groups (`None`: could not be read).
    pub groups: Option<Vec<u32>>,
}

impl Peer {
    /// Reads the peer's credentials off a connected Unix stream.
    pub fn of(stream: &tokio::net::UnixStream) -> io::Result<Peer> {
        let cred = stream.peer_cred()?;
        let pid = cred.pid().filter(|p| *p > 0);
        let groups = match peer_groups(stream.as_raw_fd()) {
            Ok(g) => Some(g),
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {
                pid.and_then(|p| proc_groups(p).ok())
            }
            Err(_) => None,
        };
        Ok(Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid,
            groups,
        })
    }
}

#[allow(unsafe_code)] // nix has no SO_PEERGROUPS; one getsockopt call.
/// `getsockopt(SO_PEERGROUPS)`: the supplementary groups of the peer at
/// `connect()` time, growing the buffer when the kernel says it is short.
fn peer_groups(fd: std::os::fd::RawFd) -> io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = libc::socklen_t::try_from(groups.len() * std::mem::size_of::<libc::gid_t>())
            .map_err(|_| io::Error::other("too many groups"))?;
        // SAFETY: the buffer is valid for `len` bytes, `len` is a valid out
        // pointer, and the kernel writes at most `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let need = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(need);
            return Ok(groups);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ERANGE) && need > groups.len() {
            groups.resize(need, 0);
            continue;
        }
        return Err(err);
    }
}

/// The `Groups:` line of `/proc/PID/status`.
fn proc_groups(pid: i32) -> io::Result<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .ok_or_else(|| io::Error::other("no Groups: line"))?;
    line.split_whitespace()
        .map(|g| g.parse().map_err(io::Error::other))
        .collect()
}

/// Which peers the API serves (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// The API group's gid, if one is configured.
    pub group: Option<u32>,
}

impl Access {
    /// Whether `peer` may use the API.
    pub fn allows(&self, peer: &Peer) -> bool {
        if peer.uid == 0 {
            return true;
        }
        let Some(group) = self.group else {
            return false;
        };
        peer.gid == group
            || peer
                .groups
                .as_ref()
                .is_some_and(|groups| groups.contains(&group))
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_uid: HashMap<u32, usize>,
}

/// Open-connection caps (see the module doc).
#[derive(Debug)]
pub struct Limiter {
    max_total: usize,
    max_per_uid: usize,
    counts: Mutex<Counts>,
}

/// A held connection slot; released on drop.
#[derive(Debug)]
pub struct Slot {
    limiter: Arc<Limiter>,
    uid: u32,
}

impl Limiter {
    /// `max_total` connections in all; each uid but 0 at most `max_per_uid`.
    pub fn new(max_total: usize, max_per_uid: usize) -> Arc<Limiter> {
        Arc::new(Limiter {
            max_total: max_total.max(1),
            max_per_uid: max_per_uid.max(1),
            counts: Mutex::new(Counts::default()),
        })
    }

    /// A slot for a connection of `uid`, or `None` when a cap is reached.
    pub fn admit(self: &Arc<Self>, uid: u32) -> Option<Slot> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mine = c.per_uid.get(&uid).copied().unwrap_or(0);
        if c.total >= self.max_total || (uid != 0 && mine >= self.max_per_uid) {
            return None;
        }
        c.total += 1;
        c.per_uid.insert(uid, mine + 1);
        Some(Slot {
            limiter: Arc::clone(self),
            uid,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                c.per_uid.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: Option<Vec<u32>>) -> Peer {
        Peer {
            uid,
            gid,
            pid: Some(1),
            groups,
        }
    }

    #[test]
    fn root_always_others_only_through_the_group() {
        let closed = Access::default();
        let group = Access { group: Some(600) };
        assert!(closed.allows(&peer(0, 0, None)));
        assert!(!closed.allows(&peer(1000, 600, Some(vec![600]))));
        assert!(group.allows(&peer(1000, 600, Some(vec![]))), "primary gid");
        assert!(
            group.allows(&peer(1000, 100, Some(vec![5, 600]))),
            "supplementary"
        );
        assert!(!group.allows(&peer(1000, 100, Some(vec![5]))));
        assert!(!group.allows(&peer(1000, 100, None)), "unknown groups");
    }

    #[test]
    fn caps_are_total_and_per_uid_and_slots_return() {
        let l = Limiter::new(3, 1);
        let a = l.admit(1000).expect("first of uid 1000");
        assert!(l.admit(1000).is_none(), "per-uid cap");
        let _b = l.admit(0).expect("root");
        let _c = l.admit(0).expect("root is not capped per uid");
        assert!(l.admit(0).is_none(), "total cap");
        drop(a);
        assert_eq!(l.open(), 2);
        assert!(l.admit(1000).is_some(), "slot came back");
    }

    #[test]
    fn own_groups_are_read_both_ways() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut via_sockopt = peer_groups(a.as_raw_fd()).unwrap();
        let mut via_proc = proc_groups(i32::try_from(std::process::id()).unwrap()).unwrap();
        via_sockopt.sort_unstable();
        via_proc.sort_unstable();
        assert_eq!(via_sockopt, via_proc);
    }
}
