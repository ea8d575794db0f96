//! Errors of the nfnetlink clients: nf_tables and ctnetlink.
//!
//! Contract: a kernel rejection is an [`NftError`] naming the message that
//! failed (operation and object, e.g. `NEWRULE inet bulkhead input`) and the
//! errno; everything else (socket trouble, malformed replies, lost acks) is
//! an [`Error`] variant saying which step failed. Messages do not repeat the
//! source error's text; `Display` of the chain prints it once.

use std::io;

/// The kernel refused one message of a batch (the whole batch was undone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op} {object}: {}", io::Error::from_raw_os_error(*errno))]
pub struct NftError {
    /// `NEWTABLE`, `NEWRULE`, `DELSETELEM`…
    pub op: &'static str,
    /// The object addressed: `inet bulkhead input`, `inet bulkhead set ports`…
    pub object: String,
    /// Positive errno (`libc::ENOENT`…).
    pub errno: i32,
    /// Position of the message in its batch (0 = first after BATCH_BEGIN).
    pub index: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rejected(#[from] NftError),
    #[error("netlink: {step}")]
    Io {
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("no acknowledgement of a batch of {sent} messages; the outcome is unknown")]
    Unacknowledged { sent: usize },
    #[error("malformed netlink reply: {0}")]
    Malformed(&'static str),
}

impl Error {
    pub(crate) fn io(step: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { step, source }
    }

    /// The errno of a kernel rejection, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Rejected(e) => Some(e.errno),
            _ => None,
        }
    }
}
