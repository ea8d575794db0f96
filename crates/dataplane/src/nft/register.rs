//! nf_tables registers and the register layout of concatenated keys.
//!
//! Contract: a [`Reg`] is always a register the kernel accepts: the verdict
//! register, one of the four 16-byte registers `NFT_REG_1..4`, or one of the
//! sixteen 32-bit registers `NFT_REG32_00..15` (which alias the 16-byte ones:
//! `REG_1` is `REG32_00..03`). A [`ConcatLayout`] places each field of a
//! concatenation in consecutive 32-bit registers, each field padded to a
//! multiple of 4 bytes, exactly as the kernel's set backends expect the key.

use std::fmt;

/// A register operand of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reg(u32);

impl Reg {
    /// The verdict register (`NFT_REG_VERDICT`).
    pub const VERDICT: Reg = Reg(0);
    /// `NFT_REG_1`: 16 bytes, the same storage as `REG32_00..03`.
    pub const R1: Reg = Reg(1);
    /// `NFT_REG_2`: 16 bytes, the same storage as `REG32_04..07`.
    pub const R2: Reg = Reg(2);
    /// `NFT_REG_3`: 16 bytes, the same storage as `REG32_08..11`.
    pub const R3: Reg = Reg(3);
    /// `NFT_REG_4`: 16 bytes, the same storage as `REG32_12..15`.
    pub const R4: Reg = Reg(4);

    /// The 32-bit register `NFT_REG32_<n>`; `None` unless `n < 16`.
    pub const fn r32(n: u32) -> Option<Reg> {
        if n < 16 {
            Some(Reg(8 + n))
        } else {
            None
        }
    }

    /// The number the kernel expects in `*_SREG`/`*_DREG` attributes.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Index of this register's first 32-bit slot (the kernel's internal
    /// numbering), `None` for the verdict register.
    pub const fn slot(self) -> Option<u32> {
        match self.0 {
            0 => None,
            1..=4 => Some((self.0 - 1) * 4),
            n => Some(n - 8),
        }
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("verdict"),
            1..=4 => write!(f, "reg {}", self.0),
            n => write!(f, "reg32 {:02}", n - 8),
        }
    }
}

/// Why a concatenation does not fit the registers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("a concatenation needs at least one field")]
    Empty,
    #[error("field {index} has length {len}; allowed is 1..=16 bytes")]
    FieldLen { index: usize, len: u32 },
    #[error("the concatenation needs {needed} 32-bit registers from slot {first}; only 16 exist")]
    TooLong { first: u32, needed: u32 },
    #[error("field {index} is {got} bytes; the layout says {want}")]
    ValueLen { index: usize, got: usize, want: u32 },
}

/// Where each field of a concatenation lives, and the resulting key length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcatLayout {
    field_lens: Vec<u32>,
    regs: Vec<Reg>,
    key_len: u32,
}

impl ConcatLayout {
    /// Lays out fields of `field_lens` bytes starting at 32-bit slot `first`
    /// (0 = `NFT_REG32_00`, the start of `NFT_REG_1`).
    pub fn new(first: u32, field_lens: &[u32]) -> Result<Self, LayoutError> {
        if field_lens.is_empty() {
            return Err(LayoutError::Empty);
        }
        let mut slot = first;
        let mut regs = Vec::with_capacity(field_lens.len());
        for (index, &len) in field_lens.iter().enumerate() {
            if len == 0 || len > 16 {
                return Err(LayoutError::FieldLen { index, len });
            }
            regs.push(Reg::r32(slot).ok_or(LayoutError::TooLong {
                first,
                needed: slot - first + len.div_ceil(4),
            })?);
            slot += len.div_ceil(4);
        }
        if slot > 16 {
            return Err(LayoutError::TooLong {
                first,
                needed: slot - first,
            });
        }
        Ok(Self {
            field_lens: field_lens.to_vec(),
            regs,
            key_len: (slot - first) * 4,
        })
    }

    /// The register that field `i` is loaded into (and, for field 0, the
    /// `sreg` of the lookup).
    pub fn reg(&self, i: usize) -> Reg {
        self.regs[i]
    }

    /// The registers of all fields, in order.
    pub fn regs(&self) -> &[Reg] {
        &self.regs
    }

    /// Unpadded field lengths: what `NFTA_SET_DESC_CONCAT` carries.
    pub fn field_lens(&self) -> &[u32] {
        &self.field_lens
    }

    /// Padded total: the set's `key_len`.
    pub fn key_len(&self) -> u32 {
        self.key_len
    }

    /// Builds a set key from one value per field, padding each to 4 bytes.
    pub fn key(&self, values: &[&[u8]]) -> Result<Vec<u8>, LayoutError> {
        let mut key = Vec::with_capacity(self.key_len as usize);
        for (index, (v, &want)) in values.iter().zip(&self.field_lens).enumerate() {
            if v.len() != want as usize {
                return Err(LayoutError::ValueLen {
                    index,
                    got: v.len(),
                    want,
                });
            }
            key.extend_from_slice(v);
            key.resize(key.len() + (want.div_ceil(4) * 4 - want) as usize, 0);
        }
        if values.len() != self.field_lens.len() {
            return Err(LayoutError::ValueLen {
                index: values.len().min(self.field_lens.len()),
                got: 0,
                want: 0,
            });
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_alias_like_the_kernel() {
        assert_eq!(Reg::R1.slot(), Some(0));
        assert_eq!(Reg::R2.slot(), Some(4));
        assert_eq!(Reg::r32(5).unwrap().slot(), Some(5));
        assert_eq!(Reg::r32(0).unwrap().raw(), 8);
        assert_eq!(Reg::r32(16), None);
        assert_eq!(Reg::VERDICT.slot(), None);
    }

    #[test]
    fn addr_port_concat_uses_two_slots() {
        let l = ConcatLayout::new(0, &[4, 2]).unwrap();
        assert_eq!(l.regs(), &[Reg::r32(0).unwrap(), Reg::r32(1).unwrap()]);
        assert_eq!(l.key_len(), 8);
        let k = l.key(&[&[10, 0, 0, 1], &[0x1f, 0x90]]).unwrap();
        assert_eq!(k, vec![10, 0, 0, 1, 0x1f, 0x90, 0, 0]);
    }

    #[test]
    fn ifname_addr6_port_concat() {
        let l = ConcatLayout::new(0, &[16, 16, 2]).unwrap();
        assert_eq!(l.reg(1), Reg::r32(4).unwrap());
        assert_eq!(l.reg(2), Reg::r32(8).unwrap());
        assert_eq!(l.key_len(), 36);
        assert!(
            ConcatLayout::new(4, &[16, 16, 16]).is_ok(),
            "slots 4..16 fit exactly"
        );
        assert!(ConcatLayout::new(8, &[16, 16, 16]).is_err());
        assert!(ConcatLayout::new(0, &[0]).is_err());
    }
}
