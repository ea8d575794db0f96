//! Netlink message and attribute encoding and decoding for nfnetlink.
//!
//! Contract: [`MsgWriter`] appends well-formed netlink messages (16-byte
//! header, 4-byte `nfgenmsg`, 4-byte-aligned attributes) to one growing buffer;
//! lengths are patched when a message or nest is closed, so callers never
//! compute sizes. [`Attrs`] walks attributes without copying and never reads
//! past the buffer, whatever the kernel (or a fuzzer) sends.

use super::uapi::*;

/// Appends netlink messages to one buffer.
#[derive(Debug, Default)]
pub(crate) struct MsgWriter {
    pub(crate) buf: Vec<u8>,
}

/// Start offset of an open nest, returned by [`MsgWriter::nest_start`].
#[must_use]
pub(crate) struct Nest(usize);

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

impl MsgWriter {
    /// Opens a message with an `nfgenmsg` header; returns its start offset.
    pub(crate) fn begin(
        &mut self,
        ty: u16,
        flags: u16,
        seq: u32,
        family: u8,
        res_id: u16,
    ) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in end()
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        self.buf.extend_from_slice(&[family, NFNETLINK_V0]);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    /// Closes the message opened at `start`.
    pub(crate) fn end(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    pub(crate) fn bytes(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len() + pad4(len) - len, 0);
    }

    /// A NUL-terminated string, as the kernel's `NLA_STRING` policy expects.
    pub(crate) fn str(&mut self, ty: u16, s: &str) {
        let len = 4 + s.len() + 1;
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self.buf.resize(self.buf.len() + pad4(len) - len, 0);
    }

    pub(crate) fn u8(&mut self, ty: u16, v: u8) {
        self.bytes(ty, &[v]);
    }

    pub(crate) fn be32(&mut self, ty: u16, v: u32) {
        self.bytes(ty, &v.to_be_bytes());
    }

    pub(crate) fn be64(&mut self, ty: u16, v: u64) {
        self.bytes(ty, &v.to_be_bytes());
    }

    pub(crate) fn nest_start(&mut self, ty: u16) -> Nest {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        Nest(start)
    }

    /// Closes a nest. Nests longer than 65535 bytes cannot be expressed in
    /// netlink; callers split their payload before that (see `set.rs`).
    pub(crate) fn nest_end(&mut self, nest: Nest) {
        let len = self.buf.len() - nest.0;
        debug_assert!(len <= u16::MAX as usize, "netlink nest overflow");
        self.buf[nest.0..nest.0 + 2].copy_from_slice(&(len as u16).to_ne_bytes());
    }

    /// `nft_data` holding a plain value (`NFTA_DATA_VALUE`) inside attribute `ty`.
    pub(crate) fn data_value(&mut self, ty: u16, value: &[u8]) {
        let n = self.nest_start(ty);
        self.bytes(NFTA_DATA_VALUE, value);
        self.nest_end(n);
    }
}

/// One netlink message header as read from the kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MsgHeader {
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
}

/// Splits a receive buffer into (header, payload) pairs; stops at the first
/// malformed header.
pub(crate) fn messages(mut buf: &[u8]) -> impl Iterator<Item = (MsgHeader, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(buf[0..4].try_into().ok()?);
        let hdr = MsgHeader {
            ty: u16::from_ne_bytes(buf[4..6].try_into().ok()?),
            flags: u16::from_ne_bytes(buf[6..8].try_into().ok()?),
            seq: u32::from_ne_bytes(buf[8..12].try_into().ok()?),
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return None;
        }
        let payload = &buf[NLMSG_HDRLEN..len];
        buf = &buf[pad4(len).min(buf.len())..];
        Some((hdr, payload))
    })
}

/// Iterates over the attributes in `buf`, yielding (type without flags, payload).
#[derive(Debug, Clone)]
pub(crate) struct Attrs<'a>(pub(crate) &'a [u8]);

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

pub(crate) fn get_str(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

pub(crate) fn get_be32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}

pub(crate) fn get_be64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

/// The payload of an nfnetlink message after its 4-byte `nfgenmsg`, and the family.
pub(crate) fn nfgen(payload: &[u8]) -> Option<(u8, Attrs<'_>)> {
    Some((*payload.first()?, Attrs(payload.get(4..)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_and_nest_lengths_are_patched() {
        let mut w = MsgWriter::default();
        let m = w.begin(0x0a00, NLM_F_REQUEST, 7, 1, 0);
        w.str(1, "abc");
        let n = w.nest_start(4);
        w.be32(1, 5);
        w.nest_end(n);
        w.end(m);
        assert_eq!(w.buf.len(), 16 + 4 + 8 + 12);
        let (hdr, payload) = messages(&w.buf).next().unwrap();
        assert_eq!((payload.len(), hdr.ty, hdr.seq), (24, 0x0a00, 7));
        let (fam, attrs) = nfgen(payload).unwrap();
        assert_eq!(fam, 1);
        let v: Vec<_> = attrs.collect();
        assert_eq!(get_str(v[0].1), "abc");
        assert_eq!(v[1].0, 4);
        let inner: Vec<_> = Attrs(v[1].1).collect();
        assert_eq!(get_be32(inner[0].1), Some(5));
    }

    #[test]
    fn truncated_input_stops_cleanly() {
        assert_eq!(Attrs(&[8, 0, 1, 0, 1]).count(), 0);
        assert_eq!(
            messages(&[200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).count(),
            0
        );
    }
}
