//! The persisted state of one network's address pool, and its search order.
//!
//! A pool covers a subnet and never hands out its reserved addresses: the
//! network address, the IPv4 broadcast address and the gateway. Pools of at
//! most 2^16 addresses (an IPv4 /16, an IPv6 /112) keep a bitmap of taken
//! offsets, split into [`Chunk`] rows of 1024 bits (128 bytes) so that an
//! allocation rewrites one small row, not the whole map; a missing chunk is
//! all free. Larger pools (IPv6 /64) are sparse: the per-address allocation
//! rows are the set, and the pool record keeps only the cursor. The cursor is the last address handed out
//! by a scan; the next scan starts after it and wraps, so a just-released
//! address is not reused at once.

use std::fmt;
use std::net::IpAddr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use super::Subnet;
use crate::envelope::{Kind, Record};
use crate::error::StoreError;

/// Pools up to this many addresses keep a bitmap.
const BITMAP_MAX: u128 = 1 << 16;
/// Addresses per bitmap chunk.
const CHUNK_BITS: u128 = 1024;
/// A sparse pool gives up after this many taken candidates in a row.
const SPARSE_PROBES: u128 = 1 << 20;

/// One network's pool record (`ipam/pool/<network>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pool {
    pub network: String,
    pub subnet: Subnet,
    pub gateway: Option<IpAddr>,
    /// The address last handed out by a scan (the network address at first).
    pub cursor: IpAddr,
    /// Whether taken offsets are kept in [`Chunk`] rows (pools of at most
    /// [`BITMAP_MAX`] addresses) rather than only as allocation rows.
    pub bitmap: bool,
}

impl Record for Pool {
    const KIND: Kind = Kind::Ipam;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        pool_key(&self.network)
    }
}

pub(crate) fn pool_key(network: &str) -> String {
    format!("pool/{network}")
}

impl Pool {
    pub fn new(network: &str, subnet: Subnet, gateway: Option<IpAddr>) -> Result<Self, StoreError> {
        if let Some(gw) = gateway {
            if !subnet.contains(gw) {
                return Err(StoreError::NotInSubnet { ip: gw, subnet });
            }
        }
        let size = subnet.size();
        Ok(Self {
            network: network.to_owned(),
            subnet,
            gateway,
            cursor: subnet.network(),
            bitmap: size <= BITMAP_MAX,
        })
    }

    /// Why the address at `offset` is never handed out, if it is reserved.
    pub fn reserved(&self, offset: u128) -> Option<&'static str> {
        let size = self.subnet.size();
        if offset == 0 {
            Some("network address")
        } else if self.subnet.network().is_ipv4() && offset == size - 1 {
            Some("broadcast address")
        } else if self.gateway.and_then(|g| self.subnet.offset_of(g)) == Some(offset) {
            Some("gateway")
        } else {
            None
        }
    }

    /// Unreserved offsets in scan order: after the cursor, wrapping, each at
    /// most once (bounded for sparse pools).
    pub fn candidates(&self) -> impl Iterator<Item = u128> + '_ {
        let size = self.subnet.size();
        let start = self.subnet.offset_of(self.cursor).unwrap_or(0);
        let limit = if self.bitmap {
            size
        } else {
            size.min(SPARSE_PROBES)
        };
        (1..=limit)
            .map(move |step| start.wrapping_add(step) & (size - 1))
            .filter(|&offset| self.reserved(offset).is_none())
    }
}

/// 1024 bits of a pool's bitmap (`ipam/bits/<network>/<index>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Chunk {
    pub network: String,
    pub index: u32,
    bits: Bitmap,
}

impl Record for Chunk {
    const KIND: Kind = Kind::Ipam;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        chunk_key(&self.network, self.index)
    }
}

pub(crate) fn chunk_key(network: &str, index: u32) -> String {
    format!("bits/{network}/{index}")
}

/// The chunk holding `offset`, and the bit inside it.
pub(crate) fn chunk_of(offset: u128) -> (u32, u128) {
    // Bitmap pools have at most 2^16 offsets, so the index fits.
    let index = u32::try_from(offset / CHUNK_BITS).unwrap_or(u32::MAX);
    (index, offset % CHUNK_BITS)
}

impl Chunk {
    pub fn empty(network: &str, index: u32) -> Self {
        Self {
            network: network.to_owned(),
            index,
            bits: Bitmap::new(CHUNK_BITS),
        }
    }

    pub fn get(&self, bit: u128) -> bool {
        self.bits.get(bit)
    }

    pub fn set(&mut self, bit: u128, taken: bool) {
        self.bits.set(bit, taken);
    }
}

/// A fixed-size bit set, stored as one hex string (16 digits per 64 bits).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Bitmap {
    words: Vec<u64>,
}

impl Bitmap {
    fn new(size: u128) -> Self {
        let words = usize::try_from(size.div_ceil(64)).unwrap_or(0);
        Self {
            words: vec![0; words],
        }
    }

    fn locate(offset: u128) -> (usize, u32) {
        let word = usize::try_from(offset / 64).unwrap_or(usize::MAX);
        (word, (offset % 64) as u32)
    }

    pub fn get(&self, offset: u128) -> bool {
        let (w, bit) = Self::locate(offset);
        self.words.get(w).is_some_and(|word| word & (1 << bit) != 0)
    }

    fn set(&mut self, offset: u128, value: bool) {
        let (w, bit) = Self::locate(offset);
        if let Some(word) = self.words.get_mut(w) {
            if value {
                *word |= 1 << bit;
            } else {
                *word &= !(1 << bit);
            }
        }
    }
}

impl fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let taken: u32 = self.words.iter().map(|w| w.count_ones()).sum();
        write!(f, "Bitmap({taken} of {} taken)", self.words.len() * 64)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Serialize for Bitmap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Hand-rolled: this runs on every allocation, over up to 8 KiB.
        let mut hex = String::with_capacity(self.words.len() * 16);
        for word in &self.words {
            for nibble in (0..16).rev() {
                hex.push(char::from(HEX[((word >> (nibble * 4)) & 0xf) as usize]));
            }
        }
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for Bitmap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bad = || de::Error::custom("bitmap: expected lowercase hex, 16 digits per word");
        if hex.len() % 16 != 0 {
            return Err(bad());
        }
        let mut words = Vec::with_capacity(hex.len() / 16);
        for chunk in hex.as_bytes().chunks_exact(16) {
            let mut word = 0u64;
            for &digit in chunk {
                let value = match digit {
                    b'0'..=b'9' => digit - b'0',
                    b'a'..=b'f' => digit - b'a' + 10,
                    _ => return Err(bad()),
                };
                word = word << 4 | u64::from(value);
            }
            words.push(word);
        }
        Ok(Self { words })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_round_trips() {
        let mut b = Bitmap::new(200);
        b.set(0, true);
        b.set(199, true);
        b.set(64, true);
        b.set(64, false);
        let json = serde_json::to_string(&b).unwrap();
        let back: Bitmap = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        assert!(back.get(0) && back.get(199) && !back.get(64) && !back.get(1));
    }

    #[test]
    fn candidates_skip_reserved_and_wrap() {
        let subnet: Subnet = "10.0.0.0/29".parse().unwrap();
        let mut pool = Pool::new("n", subnet, Some("10.0.0.1".parse().unwrap())).unwrap();
        assert_eq!(pool.candidates().collect::<Vec<_>>(), [2, 3, 4, 5, 6]);
        pool.cursor = "10.0.0.4".parse().unwrap();
        assert_eq!(pool.candidates().collect::<Vec<_>>(), [5, 6, 2, 3, 4]);
        let v6 = Pool::new("n", "fd00::/64".parse().unwrap(), None).unwrap();
        assert!(!v6.bitmap);
        assert_eq!(v6.candidates().take(2).collect::<Vec<_>>(), [1, 2]);
    }
}
