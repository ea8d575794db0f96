//! The netlink wire format every family shares: the 16-byte message header,
//! 4-byte-aligned attributes (nested ones flagged `NLA_F_NESTED`), all in
//! native byte order unless an attribute says otherwise.
//!
//! Contract: [`Writer`] appends well-formed messages to one growing buffer;
//! lengths are patched when a message ([`Writer::end`]) or nest
//! ([`Writer::nest_end`]) is closed, so callers never compute sizes.
//! [`messages`] and [`Attrs`] walk received bytes without copying and never
//! read past the buffer, whatever the kernel (or a fuzzer) sends: they stop
//! at the first malformed header or attribute. The families' fixed headers
//! (`ifinfomsg`, `nfgenmsg`, …) and numbers live with the families.

// linux/netlink.h
pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;
/// In an NLMSG_ERROR reply: the request was not echoed back (NETLINK_CAP_ACK).
pub const NLM_F_CAPPED: u16 = 0x100;
/// In an NLMSG_ERROR reply: extended-ack attributes follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLA_F_NESTED: u16 = 0x8000;
pub const NLA_TYPE_MASK: u16 = 0x3fff;

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends netlink messages to one buffer.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

/// Start offset of an open nest, returned by [`Writer::nest_start`].
#[must_use]
pub struct Nest(usize);

impl Writer {
    /// Opens a message; returns its start offset for [`Writer::end`].
    pub fn begin(&mut self, ty: u16, flags: u16, seq: u32) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in end()
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        start
    }

    /// Closes the message opened at `start`.
    pub fn end(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Stamps the sequence number of the message at `start`.
    pub fn set_seq(&mut self, start: usize, seq: u32) {
        self.buf[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
    }

    /// The flags of the message at `start`.
    pub fn flags(&self, start: usize) -> u16 {
        u16::from_ne_bytes([self.buf[start + 6], self.buf[start + 7]])
    }

    pub fn set_flags(&mut self, start: usize, flags: u16) {
        self.buf[start + 6..start + 8].copy_from_slice(&flags.to_ne_bytes());
    }

    /// Raw bytes (a family's fixed header), padded to 4 bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(pad4(self.buf.len()), 0);
        self
    }

    /// An attribute with `data` as its payload.
    pub fn bytes(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.raw(data)
    }

    /// A NUL-terminated string, as the kernel's `NLA_STRING` policy expects.
    pub fn str(&mut self, ty: u16, s: &str) -> &mut Self {
        let len = 4 + s.len() + 1;
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self.raw(&[])
    }

    pub fn u8(&mut self, ty: u16, v: u8) -> &mut Self {
        self.bytes(ty, &[v])
    }

    /// A 32-bit value in host byte order (`NLA_U32`).
    pub fn u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.bytes(ty, &v.to_ne_bytes())
    }

    /// A 32-bit value in network byte order (`NLA_BE32`).
    pub fn be32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    pub fn be64(&mut self, ty: u16, v: u64) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    /// Opens a nested attribute (`NLA_F_NESTED` set).
    pub fn nest_start(&mut self, ty: u16) -> Nest {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        Nest(start)
    }

    /// Closes a nest. Nests longer than 65535 bytes cannot be expressed in
    /// netlink; callers split their payload before that (see `nft/set.rs`).
    pub fn nest_end(&mut self, nest: Nest) -> &mut Self {
        let len = self.buf.len() - nest.0;
        debug_assert!(len <= u16::MAX as usize, "netlink nest overflow");
        self.buf[nest.0..nest.0 + 2].copy_from_slice(&(len as u16).to_ne_bytes());
        self
    }
}

/// One netlink message header as read from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
}

/// Splits a received buffer into (header, payload) pairs; stops at the
/// first malformed header.
pub fn messages(mut buf: &[u8]) -> impl Iterator<Item = (Header, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(buf[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return None;
        }
        let hdr = Header {
            ty: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: u32::from_ne_bytes(buf[8..12].try_into().ok()?),
        };
        let payload = &buf[NLMSG_HDRLEN..len];
        buf = &buf[pad4(len).min(buf.len())..];
        Some((hdr, payload))
    })
}

/// Iterates over the attributes in `buf`, yielding (type without flags, payload).
#[derive(Debug, Clone)]
pub struct Attrs<'a>(pub &'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([self.0[0], self.0[1]]) as usize;
        let ty = u16::from_ne_bytes([self.0[2], self.0[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > self.0.len() {
            self.0 = &[];
            return None;
        }
        let payload = &self.0[4..len];
        self.0 = &self.0[pad4(len).min(self.0.len())..];
        Some((ty, payload))
    }
}

/// A string attribute without its trailing NUL.
pub fn str_of(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// A host-order 32-bit attribute.
pub fn u32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?))
}

pub fn be32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}

pub fn be64_of(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_and_nest_lengths_are_patched() {
        let mut w = Writer::default();
        let m = w.begin(0x0a00, NLM_F_REQUEST, 7);
        w.raw(&[1, 0, 0, 0]).str(1, "abc");
        let n = w.nest_start(4);
        w.be32(1, 5).u32(2, 6);
        w.nest_end(n);
        w.end(m);
        w.set_seq(m, 9);
        assert_eq!(w.buf.len(), 16 + 4 + 8 + 20);
        let (hdr, payload) = messages(&w.buf).next().unwrap();
        assert_eq!((payload.len(), hdr.ty, hdr.seq), (32, 0x0a00, 9));
        let v: Vec<_> = Attrs(&payload[4..]).collect();
        assert_eq!(str_of(v[0].1), "abc");
        assert_eq!(v[1].0, 4, "the nested flag is masked off");
        let inner: Vec<_> = Attrs(v[1].1).collect();
        assert_eq!(be32_of(inner[0].1), Some(5));
        assert_eq!(u32_of(inner[1].1), Some(6));
        assert_eq!(w.buf.len() % 4, 0);
    }

    #[test]
    fn truncated_input_stops_cleanly() {
        assert_eq!(Attrs(&[8, 0, 1, 0, 1]).count(), 0);
        assert_eq!(Attrs(&[2, 0, 1, 0]).count(), 0);
        assert_eq!(messages(&[1, 2, 3]).count(), 0);
        assert_eq!(
            messages(&[200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).count(),
            0
        );
    }
}
