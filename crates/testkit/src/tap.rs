//! A "guest" on a TAP switch port, without a VM: the test opens the TAP
//! from userspace (`/dev/net/tun`, `TUNSETIFF` with `IFF_TAP|IFF_NO_PI`) in
//! the namespace it lives in and reads and writes whole Ethernet frames, as
//! a VMM would. [`TapGuest::open_as`] opens it with another uid/gid (on a
//! thread whose own credentials are dropped, so the test process keeps
//! root) to check the TAP's owner and group.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};

/// `struct ifreq` as TUNSETIFF reads it.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// One open queue of a TAP device.
#[derive(Debug)]
pub struct TapGuest {
    file: File,
}

fn attach(name: &str, multi_queue: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    if multi_queue {
        req.flags |= libc::IFF_MULTI_QUEUE as libc::c_short;
    }
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: `req` is a live, initialised ifreq that TUNSETIFF reads and
    // writes only within; the descriptor is open for the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

fn enter(netns: &Path) -> io::Result<()> {
    let ns = File::open(netns)?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

fn check(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl TapGuest {
    /// Attaches to the existing TAP `name` in the namespace `netns` as root.
    pub fn open(netns: &Path, name: &str, multi_queue: bool) -> io::Result<Self> {
        let (netns, name) = (netns.to_path_buf(), name.to_owned());
        std::thread::spawn(move || {
            enter(&netns)?;
            attach(&name, multi_queue).map(|file| Self { file })
        })
        .join()
        .map_err(|_| io::Error::other("tap thread panicked"))?
    }

    /// [`TapGuest::open`] as user `uid`, group `gid` and no supplementary
    /// groups, without any capability: what an unprivileged VMM gets.
    pub fn open_as(
        netns: &Path,
        name: &str,
        uid: u32,
        gid: u32,
        multi_queue: bool,
    ) -> io::Result<Self> {
        let (netns, name) = (netns.to_path_buf(), name.to_owned());
        std::thread::spawn(move || {
            enter(&netns)?;
            // Raw system calls change this thread's credentials only (the
            // libc wrappers would change every thread of the test). Leaving
            // uid 0 clears the thread's effective capabilities.
            // SAFETY: plain credential system calls with integer arguments
            // (setgroups with an empty list and a null pointer).
            unsafe {
                check(libc::syscall(
                    libc::SYS_setgroups,
                    0,
                    std::ptr::null::<libc::gid_t>(),
                ))?;
                check(libc::syscall(libc::SYS_setresgid, gid, gid, gid))?;
                check(libc::syscall(libc::SYS_setresuid, uid, uid, uid))?;
            }
            attach(&name, multi_queue).map(|file| Self { file })
        })
        .join()
        .map_err(|_| io::Error::other("tap thread panicked"))?
    }

    /// Writes one frame to the host side (what the guest sends).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        (&self.file).write_all(frame)
    }

    /// The first frame the host sends to the guest within `timeout` for
    /// which `want` holds; others are skipped.
    pub fn recv_matching(
        &self,
        timeout: Duration,
        want: impl Fn(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let end = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32 + 1)
                .unwrap_or(PollTimeout::MAX);
            if poll(&mut fds, ms).unwrap_or(0) == 0 {
                continue;
            }
            match (&self.file).read(&mut buf) {
                Ok(n) if want(&buf[..n]) => return Some(buf[..n].to_vec()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read tap: {e}"),
            }
        }
    }
}

/// Whether `frame` is Ethernet/IPv4/UDP with these ports.
pub fn is_udp(frame: &[u8], sport: u16, dport: u16) -> bool {
    if frame.len() < 42 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
        return false;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let udp = &frame[14 + ihl..];
    udp.len() >= 8
        && u16::from_be_bytes([udp[0], udp[1]]) == sport
        && u16::from_be_bytes([udp[2], udp[3]]) == dport
}
