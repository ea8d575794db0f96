//! Deleting connection-tracking entries over ctnetlink, in one namespace.
//!
//! Contract: [`Conntrack::delete_by_addr`] removes every entry that involves
//! the given address in either direction: as the original tuple's source or
//! destination, or as the reply tuple's (a published port's flow is DNATed:
//! its original destination is a host address, only its reply source is the
//! endpoint); [`Conntrack::delete_flow`] removes the entry of one 5-tuple
//! (either direction of the flow finds it). The kernel does the matching
//! (dumps filtered with `CTA_FILTER`, one per field): the table is never
//! copied out whole, except by [`Conntrack::delete_involving_any`] for
//! several addresses at once, or for one address when the namespace tracks
//! at most [`SMALL_TABLE`] entries, where one dump of the namespace replaces
//! four filtered ones per address (each dump walks the kernel's whole,
//! global, hash table under its bucket locks: 262,144 buckets here, which
//! the daemon's profile showed as 85 % of its CPU while endpoints were
//! deleted one after another, and ~10 ms a walk on a loaded 2-vCPU
//! machine; copying a small namespace's entries out costs less than the
//! three walks it saves); a namespace that tracks no entry at all (the
//! kernel's per-namespace count) is not walked. Each returns how many entries the kernel
//! removed: an entry that expired between dump and delete is not counted and
//! is not an error. Deletes are sent as one burst of messages, each acked.
//! Used when an ACL starts blocking a flow that is already established:
//! without this, `ct state established accept` would keep letting it through.

use std::net::IpAddr;
use std::path::Path;

use crate::netlink::wire::{Attrs, Writer};
use crate::nft::nfnl::NlSocket;
use crate::nft::nfnl::{nfgen, NfWriter};
use crate::nft::uapi::*;
use crate::nft::{Error, NftError};

/// One direction of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number.
    pub proto: u8,
    /// Ports for TCP/UDP/SCTP/DCCP/UDPLITE; 0 otherwise.
    pub sport: u16,
    pub dport: u16,
}

/// A tracked connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub orig: Tuple,
    pub reply: Option<Tuple>,
    pub id: Option<u32>,
    family: u8,
    /// The kernel's own encoding of the original tuple and zone, sent back
    /// verbatim on delete so every protocol (ICMP ids, GRE keys…) matches.
    raw_orig: Vec<u8>,
    raw_zone: Option<Vec<u8>>,
}

/// A ctnetlink socket in one network namespace.
#[derive(Debug)]
pub struct Conntrack {
    nl: NlSocket,
}

const MSG_GET: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
const MSG_GET_STATS: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS;
const MSG_DELETE: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;

/// Up to this many entries in the namespace, one unfiltered dump (one walk
/// of the global hash, every entry of the namespace copied out) is cheaper
/// than four filtered dumps (four walks, few entries copied): a walk of
/// 262,144 buckets costs about what copying and parsing several thousand
/// entries does.
pub const SMALL_TABLE: u32 = 4096;

impl Conntrack {
    /// Opens a socket in the caller's namespace (`None`) or in `netns`.
    pub fn open(netns: Option<&Path>) -> Result<Self, Error> {
        let nl = NlSocket::open(netns).map_err(Error::io("open socket"))?;
        Ok(Self { nl })
    }

    /// Every entry of the namespace (IPv4 and IPv6).
    pub fn list(&mut self) -> Result<Vec<Entry>, Error> {
        let seq = self.nl.take_seq(1);
        let mut w = Writer::default();
        let m = w.nf_begin(
            MSG_GET,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            libc::AF_UNSPEC as u8,
            0,
        );
        w.end(m);
        self.dump_entries(&w.buf, seq)
    }

    /// Sends a conntrack dump request and parses every entry of the reply.
    fn dump_entries(&mut self, request: &[u8], seq: u32) -> Result<Vec<Entry>, Error> {
        let msgs = self.nl.dump(request, seq, "GET", "conntrack")?;
        Ok(msgs.iter().filter_map(|(_, p)| parse_entry(p)).collect())
    }

    /// The entries whose `reply` (else original) tuple has `addr` as its
    /// source (`src`) or destination, filtered by the kernel.
    pub fn list_matching(
        &mut self,
        addr: IpAddr,
        reply: bool,
        src: bool,
    ) -> Result<Vec<Entry>, Error> {
        let (family, ip_attr) = match (addr, src) {
            (IpAddr::V4(_), true) => (libc::AF_INET, CTA_IP_V4_SRC),
            (IpAddr::V4(_), false) => (libc::AF_INET, CTA_IP_V4_DST),
            (IpAddr::V6(_), true) => (libc::AF_INET6, CTA_IP_V6_SRC),
            (IpAddr::V6(_), false) => (libc::AF_INET6, CTA_IP_V6_DST),
        };
        let octets = match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let seq = self.nl.take_seq(1);
        let mut w = Writer::default();
        let m = w.nf_begin(MSG_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, family as u8, 0);
        let tuple = w.nest_start(if reply {
            CTA_TUPLE_REPLY
        } else {
            CTA_TUPLE_ORIG
        });
        let ip = w.nest_start(CTA_TUPLE_IP);
        w.bytes(ip_attr, &octets);
        w.nest_end(ip);
        w.nest_end(tuple);
        let filter = w.nest_start(CTA_FILTER);
        let flag = if src {
            CTA_FILTER_FLAG_IP_SRC
        } else {
            CTA_FILTER_FLAG_IP_DST
        };
        let (orig_flags, reply_flags) = if reply { (0, flag) } else { (flag, 0) };
        // Host byte order: the kernel reads these as NLA_U32.
        w.bytes(CTA_FILTER_ORIG_FLAGS, &orig_flags.to_ne_bytes());
        w.bytes(CTA_FILTER_REPLY_FLAGS, &reply_flags.to_ne_bytes());
        w.nest_end(filter);
        w.end(m);
        self.dump_entries(&w.buf, seq)
    }

    /// Every entry that involves `addr` in either direction (see the module
    /// doc), each once: four kernel-filtered dumps.
    pub fn involving(&mut self, addr: IpAddr) -> Result<Vec<Entry>, Error> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (reply, src) in [(false, true), (false, false), (true, true), (true, false)] {
            for e in self.list_matching(addr, reply, src)? {
                if seen.insert((e.raw_orig.clone(), e.raw_zone.clone())) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Deletes every entry that involves `addr` (see the module doc).
    pub fn delete_by_addr(&mut self, addr: IpAddr) -> Result<usize, Error> {
        let doomed = self.involving(addr)?;
        self.delete(&doomed)
    }

    /// How many entries the namespace tracks now (one short request; the
    /// kernel keeps the count, nothing is walked).
    pub fn count(&mut self) -> Result<u32, Error> {
        let seq = self.nl.take_seq(1);
        let mut w = Writer::default();
        let m = w.nf_begin(
            MSG_GET_STATS,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            libc::AF_UNSPEC as u8,
            0,
        );
        w.end(m);
        let msgs = self.nl.dump(&w.buf, seq, "GET_STATS", "conntrack")?;
        let count = msgs.iter().find_map(|(_, p)| {
            let (_, attrs) = nfgen(p)?;
            attrs
                .into_iter()
                .find(|(ty, _)| *ty == CTA_STATS_GLOBAL_ENTRIES)
                .and_then(|(_, v)| crate::netlink::wire::be32_of(v))
        });
        count.ok_or_else(|| Error::io("GET_STATS")(std::io::Error::other("no entry count")))
    }

    /// Deletes every entry that involves any of `addrs` (see the module
    /// doc): one unfiltered dump of the namespace, matched here, when there
    /// is more than one address or the namespace's table is small; else
    /// four kernel-filtered dumps.
    pub fn delete_involving_any(&mut self, addrs: &[IpAddr]) -> Result<usize, Error> {
        if addrs.is_empty() {
            return Ok(0);
        }
        // Any dump walks every bucket of the kernel's table (all
        // namespaces'), however few entries this namespace has: none, none
        // to walk for.
        let count = self.count().ok();
        if count == Some(0) {
            return Ok(0);
        }
        match addrs {
            [one] if count.is_none_or(|n| n > SMALL_TABLE) => self.delete_by_addr(*one),
            _ => {
                let set: std::collections::HashSet<IpAddr> = addrs.iter().copied().collect();
                let involved = |t: &Tuple| set.contains(&t.src) || set.contains(&t.dst);
                let mut doomed = self.list()?;
                doomed.retain(|e| involved(&e.orig) || e.reply.as_ref().is_some_and(involved));
                self.delete(&doomed)
            }
        }
    }

    /// Deletes the entry of the flow `t` (given in either direction).
    pub fn delete_flow(&mut self, t: &Tuple) -> Result<usize, Error> {
        let mut doomed = self.list_matching(t.src, false, true)?;
        doomed.extend(self.list_matching(t.src, true, true)?);
        doomed.retain(|e| e.orig == *t || e.reply.as_ref() == Some(t));
        doomed.dedup_by(|a, b| a.raw_orig == b.raw_orig && a.raw_zone == b.raw_zone);
        self.delete(&doomed)
    }

    /// Deletes the given entries; returns how many the kernel removed.
    pub fn delete(&mut self, entries: &[Entry]) -> Result<usize, Error> {
        if entries.is_empty() {
            return Ok(0);
        }
        let n = entries.len() as u32;
        let first = self.nl.take_seq(n);
        let mut w = Writer::default();
        for (i, e) in entries.iter().enumerate() {
            let seq = first.wrapping_add(i as u32);
            let m = w.nf_begin(MSG_DELETE, NLM_F_REQUEST | NLM_F_ACK, seq, e.family, 0);
            w.bytes(CTA_TUPLE_ORIG | NLA_F_NESTED, &e.raw_orig);
            if let Some(z) = &e.raw_zone {
                w.bytes(CTA_ZONE, z);
            }
            if let Some(id) = e.id {
                w.bytes(CTA_ID, &id.to_be_bytes());
            }
            w.end(m);
        }
        let answers = self
            .nl
            .request(&w.buf, first, n as usize)
            .map_err(Error::io("delete"))?;
        let mut removed = 0;
        for answer in answers.into_iter().flatten() {
            match answer {
                Ok(()) => removed += 1,
                Err(nack) if nack.errno == libc::ENOENT => {}
                Err(nack) => {
                    return Err(NftError {
                        op: "DELETE",
                        object: "conntrack".into(),
                        errno: nack.errno,
                        index: 0,
                    }
                    .into())
                }
            }
        }
        Ok(removed)
    }
}

fn parse_entry(payload: &[u8]) -> Option<Entry> {
    let (family, attrs) = nfgen(payload)?;
    let (mut orig, mut raw_orig, mut reply, mut id, mut raw_zone) =
        (None, Vec::new(), None, None, None);
    for (ty, v) in attrs {
        match ty {
            CTA_TUPLE_ORIG => {
                orig = parse_tuple(v);
                raw_orig = v.to_vec();
            }
            CTA_TUPLE_REPLY => reply = parse_tuple(v),
            CTA_ID => {
                id = v
                    .get(..4)
                    .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
            }
            CTA_ZONE => raw_zone = Some(v.to_vec()),
            _ => {}
        }
    }
    Some(Entry {
        orig: orig?,
        reply,
        id,
        family,
        raw_orig,
        raw_zone,
    })
}

fn parse_tuple(v: &[u8]) -> Option<Tuple> {
    let (mut src, mut dst, mut proto, mut sport, mut dport) = (None, None, 0, 0, 0);
    for (ty, inner) in Attrs(v) {
        match ty {
            CTA_TUPLE_IP => {
                for (aty, a) in Attrs(inner) {
                    let ip = match (aty, a.len()) {
                        (CTA_IP_V4_SRC | CTA_IP_V4_DST, 4) => {
                            IpAddr::from(<[u8; 4]>::try_from(a).ok()?)
                        }
                        (CTA_IP_V6_SRC | CTA_IP_V6_DST, 16) => {
                            IpAddr::from(<[u8; 16]>::try_from(a).ok()?)
                        }
                        _ => continue,
                    };
                    match aty {
                        CTA_IP_V4_SRC | CTA_IP_V6_SRC => src = Some(ip),
                        _ => dst = Some(ip),
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for (pty, p) in Attrs(inner) {
                    match (pty, p.len()) {
                        (CTA_PROTO_NUM, 1) => proto = p[0],
                        (CTA_PROTO_SRC_PORT, 2) => sport = u16::from_be_bytes([p[0], p[1]]),
                        (CTA_PROTO_DST_PORT, 2) => dport = u16::from_be_bytes([p[0], p[1]]),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(Tuple {
        src: src?,
        dst: dst?,
        proto,
        sport,
        dport,
    })
}
