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

/// `ETH_P_ALL`, in network byte order as `sockaddr_ll` takes it. Every
/// protocol, because only such a tap sees a bridge port's frames: a socket
/// bound to `ETH_P_IP` is served after the bridge has consumed the frame.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// The classic BPF filter of [`packet_socket`]: IPv4, UDP, not a fragment,
/// destination port 67 (the DHCP server port); everything else stays in
/// the kernel.
const DHCP_SERVER_FILTER: [libc::sock_filter; 11] = [
    bpf(0x28, 0, 0, 12),       // ldh [12]            EtherType
    bpf(0x15, 0, 8, 0x0800),   // jeq IPv4 ? next : drop
    bpf(0x30, 0, 0, 23),       // ldb [23]            IP protocol
    bpf(0x15, 0, 6, 17),       // jeq UDP ? next : drop
    bpf(0x28, 0, 0, 20),       // ldh [20]            flags, fragment offset
    bpf(0x45, 4, 0, 0x1fff),   // jset offset ? drop : next
    bpf(0xb1, 0, 0, 14),       // ldxb 4*([14]&0xf)   IP header length
    bpf(0x48, 0, 0, 16),       // ldh [x+16]          UDP destination port
    bpf(0x15, 0, 1, 67),       // jeq 67 ? accept : drop
    bpf(0x06, 0, 0, 0x4_0000), // accept (whole frame)
    bpf(0x06, 0, 0, 0),        // drop
];

const fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn sockaddr_ll(ifindex: u32, protocol: u16) -> libc::sockaddr_ll {
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol,
        sll_ifindex: ifindex as libc::c_int,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    }
}

/// An `AF_PACKET` raw socket that receives only the frames of the interface
/// `ifindex` to UDP port 67 (created listening to no protocol, filtered,
/// then bound, so that no frame of another interface is ever queued on it),
/// with a receive timeout. Returns the socket and the interface's MAC
/// address.
pub fn packet_socket(
    ifindex: u32,
    timeout: std::time::Duration,
) -> io::Result<(std::os::fd::OwnedFd, [u8; 6])> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2) call; the returned descriptor is owned below.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: the option value points at a live timeval of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let prog = libc::sock_fprog {
        len: DHCP_SERVER_FILTER.len() as u16,
        filter: DHCP_SERVER_FILTER.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at the static filter array for the call; the
    // kernel copies the program.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let addr = sockaddr_ll(ifindex, ETH_P_ALL_BE);
    // SAFETY: `addr` is an initialised sockaddr_ll whose exact size is passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // The bound interface's hardware address, as packet_getname reports it.
    let mut name = sockaddr_ll(0, 0);
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `name` and `len` are live and sized for a sockaddr_ll.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut name as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&name.sll_addr[..6]);
    Ok((fd, mac))
}

/// Receives one frame from a [`packet_socket`]; `Ok(None)` for a frame the
/// interface sent (`PACKET_OUTGOING`), which is not the guest's.
pub fn packet_recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut from = sockaddr_ll(0, 0);
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf` is writable for its length; `from`/`len` are live and
    // sized for a sockaddr_ll.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&mut from as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if from.sll_pkttype == libc::PACKET_OUTGOING {
        return Ok(None);
    }
    Ok(Some(n as usize))
}

/// Sends one whole Ethernet frame out of the interface a [`packet_socket`]
/// is bound to.
pub fn packet_send(fd: BorrowedFd<'_>, frame: &[u8]) -> io::Result<()> {
    // SAFETY: `frame` is readable for its length for the duration of the call.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
