//! The one error of the store: what failed, on which record or address.
//!
//! Each variant names the object (`endpoints/abc`, `ip 10.0.0.7`, the database
//! path) in its message. Where a lower-level error caused the failure it is
//! kept as the `source` and not repeated in the message, so a caller that
//! prints the chain (`open /var/lib/bulkhead/bulkhead.redb: Database already
//! open`) prints each cause once.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::envelope::Kind;
use crate::ipam::Subnet;

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Anything the store can fail at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The state directory could not be created.
    #[error("create state directory {}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be opened (locked by another process,
    /// corrupt, written by a newer redb, …).
    #[error("open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    /// The storage engine failed during `op` (begin, read, write, commit).
    #[error("store {op}")]
    Backend {
        op: String,
        #[source]
        source: redb::Error,
    },
    /// The commit log (`bulkhead.wal`) could not be read, written or
    /// synced. After a failed write or sync the store refuses every later
    /// commit: what the kernel's page cache kept is then unknown.
    #[error("commit log {}: {op}", path.display())]
    Log {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A stored value is not a valid envelope or body for its record type.
    #[error("decode {kind}/{key}")]
    Decode {
        kind: Kind,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// A record could not be serialised.
    #[error("encode {kind}/{key}")]
    Encode {
        kind: Kind,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// The record was written by a newer bulkhead; refusing to guess.
    #[error(
        "schema {found} of {kind}/{key} is newer than this bulkhead understands ({supported})"
    )]
    SchemaTooNew {
        kind: Kind,
        key: String,
        found: u32,
        supported: u32,
    },
    /// [`crate::Record::upgrade`] refused an old body.
    #[error("upgrade {kind}/{key} from schema {from}: {reason}")]
    Upgrade {
        kind: Kind,
        key: String,
        from: u32,
        reason: String,
    },
    /// Optimistic concurrency: the record changed since it was read.
    #[error("revision conflict on {kind}/{key}: expected {}, found {}", show_rev(*expected), show_rev(*found))]
    Conflict {
        kind: Kind,
        key: String,
        expected: Option<u64>,
        found: Option<u64>,
    },
    /// A key or identifier the store cannot use.
    #[error("invalid {field} {value:?}: {allowed}")]
    InvalidKey {
        field: &'static str,
        value: String,
        allowed: &'static str,
    },
    /// A subnet string that is not a network CIDR.
    #[error("subnet {value}: {reason}")]
    InvalidSubnet { value: String, reason: String },
    /// An address (requested, gateway, released) outside the pool's subnet.
    #[error("ip {ip}: not in subnet {subnet}")]
    NotInSubnet { ip: IpAddr, subnet: Subnet },
    /// A requested address the pool keeps for itself.
    #[error("ip {ip}: reserved in subnet {subnet} ({what})")]
    Reserved {
        ip: IpAddr,
        subnet: Subnet,
        what: &'static str,
    },
    /// A requested address that is already allocated.
    #[error("ip {ip}: already allocated in network {network} to {owner}")]
    AddressInUse {
        ip: IpAddr,
        network: String,
        owner: String,
    },
    /// Every usable address of the subnet is allocated.
    #[error("subnet {subnet}: no free address")]
    Exhausted { subnet: Subnet },
    /// No pool exists for the network.
    #[error("network {network}: no address pool")]
    NoPool { network: String },
    /// A pool already exists for the network.
    #[error("network {network}: address pool over {subnet} already exists")]
    PoolExists { network: String, subnet: Subnet },
    /// Release of an address that is not allocated.
    #[error("ip {ip}: not allocated in network {network}")]
    NotAllocated { ip: IpAddr, network: String },
}

fn show_rev(rev: Option<u64>) -> String {
    rev.map_or_else(|| "absent".to_owned(), |r| r.to_string())
}

impl StoreError {
    pub(crate) fn backend(op: impl Into<String>, source: impl Into<redb::Error>) -> Self {
        Self::Backend {
            op: op.into(),
            source: source.into(),
        }
    }
}
