//! [`KernelError`]: one failed kernel step as one line of text, with the
//! kernel's errno when it gave one.
//!
//! Contract: the text names the step and the reason (`create veth bhp1:
//! File exists`) and is what users see; the errno is what code decides on.
//! [`KernelError::from_error`] keeps the first errno found along an error's
//! source chain (an `io::Error`'s, or an nfnetlink refusal's).

/// One failed kernel step, in one line (`create veth bhp1234: File exists`),
/// with the kernel's errno when it gave one: callers decide on
/// [`KernelError::errno`], never on the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// The kernel refused the step with `errno`; `line` says which step
    /// and why.
    #[error("{line}")]
    Refused { errno: i32, line: String },
    /// The step failed without an errno: a link gone right after it was
    /// made, IR that does not lower, several clean-up failures at once.
    #[error("{0}")]
    Failed(String),
}

impl KernelError {
    /// A failure without an errno.
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self::Failed(e.to_string())
    }

    /// The kernel's refusal of a step.
    pub fn refused(errno: i32, line: impl std::fmt::Display) -> Self {
        Self::Refused {
            errno,
            line: line.to_string(),
        }
    }

    /// The step `what` failed with the system call error `e`.
    pub fn io(what: impl std::fmt::Display, e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(errno) => Self::refused(errno, format!("{what}: {e}")),
            None => Self::new(format!("{what}: {e}")),
        }
    }

    /// `error` and each of its sources in one line (`netlink: commit
    /// batch: Message too long`), keeping the first errno of the chain.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut line = error.to_string();
        let mut errno = errno_of(error);
        let mut source = error.source();
        while let Some(s) = source {
            line.push_str(": ");
            line.push_str(&s.to_string());
            errno = errno.or_else(|| errno_of(s));
            source = s.source();
        }
        match errno {
            Some(errno) => Self::Refused { errno, line },
            None => Self::Failed(line),
        }
    }

    /// The errno the kernel answered the step with, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Refused { errno, .. } => Some(*errno),
            Self::Failed(_) => None,
        }
    }
}

/// The errno one error of a chain carries itself.
fn errno_of(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return io.raw_os_error();
    }
    e.downcast_ref::<crate::nft::Error>()
        .and_then(crate::nft::Error::errno)
}

#[cfg(test)]
mod error_tests {
    use super::*;
    use crate::nft::{Error, NftError};

    #[test]
    fn the_errno_survives_the_one_line_message() {
        let io = std::io::Error::from_raw_os_error(libc::EEXIST);
        let e = KernelError::io("create netns bht1", &io);
        assert_eq!(e.errno(), Some(libc::EEXIST));
        assert!(e.to_string().starts_with("create netns bht1: File exists"));
        let nft = Error::from(NftError {
            op: "DELTABLE",
            object: "inet bulkhead".into(),
            errno: libc::ENOENT,
            index: 0,
        });
        let e = KernelError::from_error(&nft);
        assert_eq!(e.errno(), Some(libc::ENOENT));
        assert!(e
            .to_string()
            .starts_with("DELTABLE inet bulkhead: No such file"));
        let e = KernelError::from_error(&Error::Unacknowledged { sent: 3 });
        assert_eq!(
            (e.errno(), e.to_string().contains("3 messages")),
            (None, true)
        );
    }
}
