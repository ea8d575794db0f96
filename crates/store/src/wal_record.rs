//! The commit log's records (see [`crate::wal`]): the encoding of one
//! transaction's changes, the frame around it (`len | crc32 | body`), and
//! replay at open.
//!
//! Contract: [`replay`] applies exactly the whole, checksum-valid records at
//! the start of the log, in order, in one durable redb commit, and empties
//! the log; applying a record again, or over a state that already has it,
//! changes nothing (whole values per key).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use redb::{Database, Durability};

use crate::envelope::Kind;
use crate::error::{Result, StoreError};
use crate::wal::WAL_FILE;

const PUT: u8 = 1;
const DELETE: u8 = 2;

/// The changes of one write transaction, encoded as a log record body.
#[derive(Debug, Default)]
pub(crate) struct Changes(pub(crate) Vec<u8>);

impl Changes {
    pub(crate) fn put(&mut self, kind: Kind, key: &str, value: &[u8]) {
        self.head(PUT, kind, key);
        self.bytes(value);
    }
    pub(crate) fn delete(&mut self, kind: Kind, key: &str) {
        self.head(DELETE, kind, key);
    }
    fn head(&mut self, op: u8, kind: Kind, key: &str) {
        // Kind indexes are < 256 (seven tables).
        self.0.extend_from_slice(&[op, kind.index() as u8]);
        self.bytes(key.as_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
    }
}

/// `len | crc32(body) | body`.
pub(crate) fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Applies the log at `path` to `db` in one durable commit and empties the
/// log; returns how many records were applied.
pub(crate) fn replay(path: &Path, db: &Database) -> Result<usize> {
    let io = |op| {
        move |source| StoreError::Log {
            path: path.to_owned(),
            op,
            source,
        }
    };
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes).map_err(io("read"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io("open")(e)),
    };
    let records = records(&bytes);
    if !records.is_empty() {
        let mut txn = db
            .begin_write()
            .map_err(|e| StoreError::backend("begin write transaction", e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::backend("set durability", e))?;
        for body in &records {
            apply(&txn, body)?;
        }
        txn.commit().map_err(|e| StoreError::backend("commit", e))?;
    }
    if !bytes.is_empty() {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io("open"))?;
        f.set_len(0)
            .and_then(|()| f.sync_data())
            .map_err(io("truncate"))?;
    }
    Ok(records.len())
}

/// The bodies of the whole records at the start of `bytes`.
fn records(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while bytes.len() >= 8 {
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap_or_default());
        let Some(body) = bytes.get(8..8 + len) else {
            break;
        };
        if len == 0 || crc32(body) != crc {
            break;
        }
        out.push(body);
        bytes = &bytes[8 + len..];
    }
    out
}

fn apply(txn: &redb::WriteTransaction, mut body: &[u8]) -> Result<()> {
    let corrupt = || StoreError::Log {
        path: PathBuf::from(WAL_FILE),
        op: "decode",
        source: std::io::Error::other("a record with a valid checksum does not decode"),
    };
    let take = |b: &mut &[u8]| -> Option<Vec<u8>> {
        let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let v = b.get(4..4 + len)?.to_vec();
        *b = &b[4 + len..];
        Some(v)
    };
    while let [op, kind, rest @ ..] = body {
        let (op, kind) = (*op, *Kind::ALL.get(*kind as usize).ok_or_else(corrupt)?);
        body = rest;
        let key = String::from_utf8(take(&mut body).ok_or_else(corrupt)?).map_err(|_| corrupt())?;
        let mut table = txn
            .open_table(crate::redb_store::table(kind))
            .map_err(|e| StoreError::backend(format!("open table {kind}"), e))?;
        let done = match op {
            PUT => {
                let value = take(&mut body).ok_or_else(corrupt)?;
                table.insert(key.as_str(), value.as_slice()).map(|_| ())
            }
            DELETE => table.remove(key.as_str()).map(|_| ()),
            _ => return Err(corrupt()),
        };
        done.map_err(|e| StoreError::backend(format!("replay {kind}/{key}"), e))?;
    }
    Ok(())
}

/// CRC-32 (IEEE), bitwise: records are small and this runs once per commit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_torn_or_corrupt_tail_ends_the_log() {
        let mut log = frame(b"\x01\x00one");
        log.extend(frame(b"\x01\x00two"));
        let whole = log.len();
        log.extend(frame(b"\x01\x00three"));
        assert_eq!(records(&log).len(), 3);
        assert_eq!(records(&log[..log.len() - 1]).len(), 2);
        let mut flipped = log.clone();
        flipped[whole + 9] ^= 1;
        assert_eq!(records(&flipped).len(), 2);
        // Zeros past the end (an extended file whose data never landed).
        log.truncate(whole);
        log.extend([0u8; 64]);
        assert_eq!(records(&log).len(), 2);
    }
}
