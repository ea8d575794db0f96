//! Netlink sockets kept open in the namespaces this kernel made.
//!
//! A netlink socket belongs to the namespace it was opened in for its whole
//! life, so the namespaces bulkhead creates ([`crate::kernel::Kernel::create_netns`])
//! get their rtnetlink and nf_tables sockets once, at creation, and every
//! later call for that namespace reuses them instead of entering the
//! namespace, opening, and handing the socket to the reaper to close.
//!
//! Contract:
//! - An entry is keyed by the namespace's identity (nsfs device and inode),
//!   found with one `stat` of whatever path the caller names (a pin, or a
//!   held `/proc/self/fd/N`). A held socket keeps its namespace alive, so
//!   the inode cannot be reused by another namespace while the entry lives.
//! - Only namespaces this kernel created are kept: an adopted one belongs
//!   to someone else, who may free it at any time, and a socket held here
//!   would keep it (and its devices) alive. Those keep one socket per call.
//! - [`Owned::forget`] (on `delete_netns`) takes the entry out; its sockets
//!   go to the reaper, whose thread pays the close's RCU wait.
//! - Each entry has its own lock, so calls for different namespaces do
//!   not wait for each other.
//! - Their receive buffers are freed when the lock is let go
//!   ([`Held`]): a thousand idle namespaces would otherwise hold ~50 MiB.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::kernel::NetnsId;
use crate::nft::NftSocket;
use crate::reaper::Reaper;
use crate::rtnl::Rtnl;

/// The sockets of one namespace.
#[derive(Debug)]
pub(super) struct NsSockets {
    pub rtnl: Rtnl,
    pub nft: NftSocket,
}

/// One namespace's sockets, shared between the map and a caller using them.
pub(super) type Entry = Arc<Mutex<NsSockets>>;

/// The namespaces made by this kernel and their sockets.
#[derive(Debug, Default)]
pub(super) struct Owned {
    map: Mutex<HashMap<NetnsId, Entry>>,
}

/// The identity of the namespace `path` names: one `stat`.
fn id_of(path: &Path) -> Option<NetnsId> {
    std::fs::metadata(path).ok().map(|m| NetnsId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

impl Owned {
    fn map(&self) -> MutexGuard<'_, HashMap<NetnsId, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `sockets` for the namespace pinned at `path` (just created).
    pub fn keep(&self, path: &Path, mut sockets: NsSockets) {
        sockets.rtnl.release_buffer();
        sockets.nft.release_buffer();
        if let Some(id) = id_of(path) {
            self.map().insert(id, Arc::new(Mutex::new(sockets)));
        }
    }

    /// The kept sockets of the namespace `path` names, if this kernel made it.
    pub fn get(&self, path: &Path) -> Option<Entry> {
        if self.map().is_empty() {
            return None;
        }
        let id = id_of(path)?;
        self.map().get(&id).cloned()
    }

    /// Takes the namespace at `path` out, its sockets closed on the reaper.
    pub fn forget(&self, path: &Path, reaper: &Reaper) {
        let Some(id) = id_of(path) else { return };
        if let Some(entry) = self.map().remove(&id) {
            reaper.reap(entry);
        }
    }

    /// How many namespaces have kept sockets.
    pub fn len(&self) -> usize {
        self.map().len()
    }
}

/// One namespace's sockets in use; their receive buffers are freed when
/// this is dropped.
pub(super) struct Held<'a>(MutexGuard<'a, NsSockets>);

impl Deref for Held<'_> {
    type Target = NsSockets;
    fn deref(&self) -> &NsSockets {
        &self.0
    }
}

impl DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut NsSockets {
        &mut self.0
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.rtnl.release_buffer();
        self.0.nft.release_buffer();
    }
}

/// Locks one entry. A panic while it was held leaves the sockets as usable
/// as the host's, which are reused the same way: replies are matched to
/// their request by sequence number.
pub(super) fn lock(entry: &Entry) -> Held<'_> {
    Held(entry.lock().unwrap_or_else(|p| p.into_inner()))
}
