//! `bulkhead exec NAMESPACE -- CMD [ARG...]`: run a user's command in a namespace.
//!
//! The CLI asks the daemon for the namespace's `netns_path`, then the calling
//! thread joins that network namespace (`setns`, which for network namespaces
//! is allowed in a multi-threaded process and affects only the caller) and
//! replaces the process with the command (`execvp`), so the command's exit
//! status is the CLI's. No shell is involved: the arguments are passed as
//! given. Joining needs CAP_SYS_ADMIN, as for `ip netns exec`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// Why `exec` could not run the command.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The namespace has no network namespace (a vm slot).
    #[error("namespace {namespace} has no network namespace to enter (isolation {isolation})")]
    NoNetns {
        /// Namespace name.
        namespace: String,
        /// Its isolation mode.
        isolation: String,
    },
    /// The pinned namespace file could not be opened.
    #[error("cannot open network namespace {}: {}", path.display(), os_text(error))]
    Open {
        /// The netns path.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// `setns` failed (usually: not root).
    #[error("cannot enter network namespace {}: {}", path.display(), error.desc())]
    Enter {
        /// The netns path.
        path: PathBuf,
        /// The errno.
        error: nix::errno::Errno,
    },
    /// The command could not be executed.
    #[error("cannot run {}: {}", program.to_string_lossy(), os_text(error))]
    Run {
        /// The program.
        program: OsString,
        /// The OS error.
        error: std::io::Error,
    },
    /// No command was given.
    #[error("exec needs a command after --")]
    NoCommand,
}

/// Enters the network namespace at `netns` and replaces this process with
/// `command`. Returns only on failure.
pub fn exec_in(netns: &Path, command: &[OsString]) -> ExecError {
    let Some((program, args)) = command.split_first() else {
        return ExecError::NoCommand;
    };
    let file = match std::fs::File::open(netns) {
        Ok(f) => f,
        Err(error) => {
            return ExecError::Open {
                path: netns.to_owned(),
                error,
            }
        }
    };
    if let Err(error) = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET) {
        return ExecError::Enter {
            path: netns.to_owned(),
            error,
        };
    }
    drop(file);
    let error = std::process::Command::new(program).args(args).exec();
    ExecError::Run {
        program: program.clone(),
        error,
    }
}

/// `No such file or directory`, without the `(os error 2)` suffix.
fn os_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
