//! Persistent TAP devices for `vm` endpoints.
//!
//! Contract: [`Rtnl::create_tap`] makes a TAP device inside the handle's
//! namespace, persistent (it outlives bulkhead's descriptor, so a VMM opens it
//! later by name), without packet-info headers, optionally multi-queue and
//! owned by a user/group so an unprivileged VMM may attach. The kernel cannot
//! create TAP devices over rtnetlink, so this uses `/dev/net/tun` from a
//! thread inside the namespace; everything after creation (MTU, up, master,
//! delete) is ordinary rtnetlink.

use std::fs::OpenOptions;
use std::os::fd::AsFd;

use super::{Rtnl, RtnlError};
use crate::netns;
use crate::sys;

/// A TAP device to create.
#[derive(Debug, Clone, Default)]
pub struct TapSpec<'a> {
    pub name: &'a str,
    pub multi_queue: bool,
    pub owner: Option<u32>,
    pub group: Option<u32>,
}

impl Rtnl {
    /// Creates the persistent TAP device `spec.name` in this handle's namespace.
    pub fn create_tap(&mut self, spec: &TapSpec<'_>) -> Result<(), RtnlError> {
        let make = || -> std::io::Result<()> {
            let tun = OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")?;
            sys::tap_create(
                tun.as_fd(),
                spec.name,
                spec.multi_queue,
                spec.owner,
                spec.group,
            )
        };
        // The device is born in the namespace of the thread that opened the
        // tun descriptor.
        let done = match self.netns.clone() {
            Some(path) => netns::run_in(Some(&path), make).and_then(|r| r),
            None => make(),
        };
        if let Err(e) = done {
            return Err(RtnlError::new("create tap", spec.name, e));
        }
        Ok(())
    }
}
