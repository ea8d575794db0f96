//! The places where the dataplane needs a raw system call that `nix` does
//! not offer: the TUN/TAP ioctls (the kernel refuses to create TAP devices
//! over rtnetlink), the netlink socket options for extended acks, and the
//! nsfs ioctl that tells a namespace file's type (adoption checks).
//!
//! Contract: every function takes a borrowed, open descriptor and plain
//! values; nothing here keeps pointers past the call. This is the only module
//! of the dataplane allowed to use `unsafe`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
/// TUNSETIFF flag: fail instead of attaching when the device exists.
const IFF_TUN_EXCL: libc::c_int = 0x8000;

fn set_int_opt(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `fd` is an open socket for the duration of the call; the option
    // value points at a live c_int and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks the kernel for error strings in acks and not to echo requests back.
/// Old kernels lack these options; that only costs the error detail.
pub fn enable_ext_ack(fd: BorrowedFd<'_>) {
    let _ = set_int_opt(fd, libc::SOL_NETLINK, NETLINK_CAP_ACK);
    let _ = set_int_opt(fd, libc::SOL_NETLINK, NETLINK_EXT_ACK);
}

/// `ioctl(NS_GET_NSTYPE)`: the `CLONE_NEW*` type of a namespace file.
const NS_GET_NSTYPE: libc::Ioctl = 0xb703;

/// The namespace type (`CLONE_NEWNET`, …) of the nsfs file `fd`; an error
/// for any other file.
pub fn ns_type(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: NS_GET_NSTYPE takes no argument; `fd` is open for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// `struct ifreq` as TUNSETIFF reads it: the name, then `ifr_flags`.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

fn ioctl_int(fd: BorrowedFd<'_>, req: libc::Ioctl, value: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the TUN ioctls used with this helper (TUNSETPERSIST,
    // TUNSETOWNER, TUNSETGROUP) take an integer argument, not a pointer.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), req, value) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attaches the open `/dev/net/tun` descriptor `fd` to a new TAP device
/// `name` (EEXIST if a device of that name exists) (no packet-info header; multi-queue if asked), sets owner/group if
/// given, and makes it persistent so it outlives the descriptor.
pub fn tap_create(
    fd: BorrowedFd<'_>,
    name: &str,
    multi_queue: bool,
    owner: Option<u32>,
    group: Option<u32>,
) -> io::Result<()> {
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TAP | libc::IFF_NO_PI | IFF_TUN_EXCL) as libc::c_short,
        _pad: [0; 22],
    };
    if multi_queue {
        req.flags |= libc::IFF_MULTI_QUEUE as libc::c_short;
    }
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: `req` is a properly sized, initialised `struct ifreq` that lives
    // across the call; TUNSETIFF reads and writes only within it.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        // IFF_TUN_EXCL reports an existing device as EBUSY.
        if e.raw_os_error() == Some(libc::EBUSY) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        return Err(e);
    }
    if let Some(uid) = owner {
        ioctl_int(fd, libc::TUNSETOWNER, uid.into())?;
    }
    if let Some(gid) = group {
        ioctl_int(fd, libc::TUNSETGROUP, gid.into())?;
    }
    ioctl_int(fd, libc::TUNSETPERSIST, 1)
}
