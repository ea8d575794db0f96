//! CNI protocol versions: which ones the plugin speaks and what each allows.
//!
//! The plugin claims exactly the versions in [`SUPPORTED`] and produces
//! results in the format of the version the runtime asked for: 0.3.x and
//! 0.4.0 add `"version": "4"|"6"` to every IP, 1.x drops it; fields added in
//! 1.1.0 are only emitted for 1.1.0. CHECK needs 0.4.0 or later; STATUS and
//! GC need 1.1.0. Anything else (including 0.1.0, 0.2.0 and configurations
//! without `cniVersion`, which mean 0.1.0) is code 1.

use crate::env::Command;
use crate::error::{CniError, Code};

/// Versions reported by VERSION, oldest first.
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest version, used when the runtime did not name one.
pub const LATEST: &str = "1.1.0";

/// A supported protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// 0.3.0.
    V0_3_0,
    /// 0.3.1.
    V0_3_1,
    /// 0.4.0 (adds CHECK).
    V0_4_0,
    /// 1.0.0 (drops `ips[].version`).
    V1_0_0,
    /// 1.1.0 (adds STATUS, GC, interface `mtu`/`socketPath`/`pciID`).
    V1_1_0,
}

/// Why a version is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Not one of [`SUPPORTED`].
    #[error("cniVersion {0:?} is not supported; this plugin supports 0.3.0, 0.3.1, 0.4.0, 1.0.0 and 1.1.0")]
    Unsupported(String),
    /// The command does not exist in that version.
    #[error("{command} is not part of CNI {version}; it needs cniVersion {needs} or later")]
    CommandTooNew {
        /// The command.
        command: &'static str,
        /// The requested version.
        version: &'static str,
        /// The first version with the command.
        needs: &'static str,
    },
}

impl From<VersionError> for CniError {
    fn from(e: VersionError) -> CniError {
        CniError::new(Code::IncompatibleVersion, e.to_string())
    }
}

impl Version {
    /// Parses a supported version: exact `x.y.z` strings only, no ranges.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        Ok(match text {
            "0.3.0" => Version::V0_3_0,
            "0.3.1" => Version::V0_3_1,
            "0.4.0" => Version::V0_4_0,
            "1.0.0" => Version::V1_0_0,
            "1.1.0" => Version::V1_1_0,
            other => return Err(VersionError::Unsupported(other.to_owned())),
        })
    }

    /// The version as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_3_0 => "0.3.0",
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// True when results carry `ips[].version` (before 1.0.0).
    pub fn ips_carry_version(self) -> bool {
        self < Version::V1_0_0
    }

    /// True when results may carry the fields added in 1.1.0.
    pub fn has_1_1_fields(self) -> bool {
        self >= Version::V1_1_0
    }

    /// Refuses a command that does not exist in this version.
    pub fn allows(self, command: Command) -> Result<(), VersionError> {
        let needs = match command {
            Command::Check => Version::V0_4_0,
            Command::Status | Command::Gc => Version::V1_1_0,
            Command::Add | Command::Del | Command::Version => Version::V0_3_0,
        };
        if self >= needs {
            Ok(())
        } else {
            Err(VersionError::CommandTooNew {
                command: command.as_str(),
                version: self.as_str(),
                needs: needs.as_str(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claimed_version_parses_and_round_trips() {
        for v in SUPPORTED {
            assert_eq!(Version::parse(v).unwrap().as_str(), v);
        }
        assert_eq!(Version::parse(LATEST).unwrap(), Version::V1_1_0);
    }

    #[test]
    fn unclaimed_versions_are_refused() {
        for v in ["0.1.0", "0.2.0", "1.2.0", "", "1.1", "v1.1.0"] {
            assert!(Version::parse(v).is_err(), "{v}");
        }
    }

    #[test]
    fn commands_are_gated_by_version() {
        assert!(Version::V0_3_1.allows(Command::Check).is_err());
        assert!(Version::V0_4_0.allows(Command::Check).is_ok());
        assert!(Version::V1_0_0.allows(Command::Gc).is_err());
        assert!(Version::V1_0_0.allows(Command::Status).is_err());
        assert!(Version::V1_1_0.allows(Command::Gc).is_ok());
        let e: CniError = Version::V1_0_0.allows(Command::Gc).unwrap_err().into();
        assert_eq!(e.code.number(), 1);
    }
}
