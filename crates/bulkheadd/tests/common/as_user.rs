//! Connections made by another user: a forked child drops to the given
//! uid, gid and supplementary groups, connects to a Unix socket `n` times,
//! and hands the connected sockets back to the test over `SCM_RIGHTS`.
//!
//! The kernel records a Unix socket's peer credentials (`SO_PEERCRED`,
//! `SO_PEERGROUPS`) at `connect()`, so the daemon sees these sockets as the
//! other user's however the test then uses them (from any thread, byte by
//! byte). The child only makes system calls between `fork` and `_exit`
//! (no locks, no unwinding), which is what is safe after forking a
//! multi-threaded test process.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, setgid, setgroups, setuid, ForkResult, Gid, Uid};

/// Who the child becomes.
#[derive(Debug, Clone)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// `nobody:nogroup` with the given supplementary groups.
pub fn nobody(groups: &[u32]) -> User {
    User {
        uid: 65534,
        gid: 65534,
        groups: groups.to_vec(),
    }
}

/// `n` sockets connected to `socket` by `user`; `Err` with the child's
/// errno when a connect failed (e.g. `EACCES` from the file mode).
pub fn connect_as(user: &User, socket: &Path, n: usize) -> io::Result<Vec<UnixStream>> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let path = std::ffi::CString::new(socket.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: the child runs only `child`, which makes system calls and
    // ends in `_exit`; the parent waits for it.
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Child => {
            drop(ours);
            let code = child(user, &groups, &path, n, theirs.as_raw_fd());
            // SAFETY: leaves the child without running the parent's exit
            // handlers or destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            let got = receive(ours.as_raw_fd(), n);
            let status = waitpid(child, None).map_err(io::Error::from)?;
            match status {
                WaitStatus::Exited(_, 0) => got,
                WaitStatus::Exited(_, errno) => Err(io::Error::from_raw_os_error(errno)),
                other => Err(io::Error::other(format!("child: {other:?}"))),
            }
        }
    }
}

/// In the child: become `user`, connect, send each socket; the exit code
/// is 0 or the errno of what failed.
fn child(user: &User, groups: &[Gid], path: &std::ffi::CStr, n: usize, back: RawFd) -> i32 {
    let dropped = setgroups(groups)
        .and_then(|()| setgid(Gid::from_raw(user.gid)))
        .and_then(|()| setuid(Uid::from_raw(user.uid)));
    if let Err(e) = dropped {
        return e as i32;
    }
    for _ in 0..n {
        match connect_raw(path) {
            Ok(fd) => {
                let iov = [IoSlice::new(b"s")];
                let fds = [fd];
                let cmsg = [ControlMessage::ScmRights(&fds)];
                if let Err(e) = sendmsg::<()>(back, &iov, &cmsg, MsgFlags::empty(), None) {
                    return e as i32;
                }
                // SAFETY: `fd` is ours and sent; closing our copy.
                unsafe { libc::close(fd) };
            }
            Err(errno) => return errno,
        }
    }
    0
}

/// `socket` + `connect` without allocating.
fn connect_raw(path: &std::ffi::CStr) -> Result<RawFd, i32> {
    // SAFETY: plain system calls on a stack-allocated address.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(*libc::__errno_location());
        }
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.to_bytes();
        if bytes.len() >= addr.sun_path.len() {
            return Err(libc::ENAMETOOLONG);
        }
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        if libc::connect(fd, std::ptr::addr_of!(addr).cast(), len) < 0 {
            let errno = *libc::__errno_location();
            libc::close(fd);
            return Err(errno);
        }
        Ok(fd)
    }
}

/// Up to `n` sockets from the child, until it closes its end.
fn receive(from: RawFd, n: usize) -> io::Result<Vec<UnixStream>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut byte = [0u8; 1];
        let mut iov = [IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(from, &mut iov, Some(&mut space), MsgFlags::empty())
            .map_err(io::Error::from)?;
        if msg.bytes == 0 {
            break;
        }
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for fd in fds {
                    // SAFETY: the kernel just gave us this descriptor.
                    out.push(unsafe { UnixStream::from_raw_fd(fd) });
                }
            }
        }
    }
    Ok(out)
}
