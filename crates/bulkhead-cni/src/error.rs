//! The CNI error result and its codes.
//!
//! Every failure of the plugin ends as one [`CniError`]: a numeric code, a
//! short `msg` and a longer `details`, printed on stdout as the spec's error
//! result `{"cniVersion", "code", "msg", "details"}` with a non-zero exit
//! status. Codes 1-99 are the spec's well-known ones ([`Code`]); 100 and up
//! are bulkhead's own and are documented in `docs/cni.md`. Other modules keep
//! their own error enums and convert into this one at the edge.

use serde_json::json;

/// An error code: the spec's well-known codes, then bulkhead's (100+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 1: incompatible CNI version.
    IncompatibleVersion,
    /// 2: unsupported field in the network configuration.
    UnsupportedField,
    /// 3: container unknown or does not exist.
    UnknownContainer,
    /// 4: invalid necessary environment variables.
    InvalidEnv,
    /// 5: I/O failure (reading stdin, writing state).
    Io,
    /// 6: failed to decode content (stdin is not JSON).
    Decode,
    /// 7: invalid network configuration.
    InvalidConfig,
    /// 11: try again later (bulkheadd unreachable or busy).
    TryAgainLater,
    /// 50: STATUS: the plugin cannot service ADD requests.
    NotAvailable,
    /// 100: the bulkhead network named in the configuration does not exist.
    NoSuchNetwork,
    /// 101: ADD for a (container id, ifname) that is already attached.
    AttachmentExists,
    /// 102: bulkheadd failed the request (an internal error on its side).
    DaemonFailed,
    /// 103: this bulkheadd lacks an API call the operation needs.
    NeedsApi,
    /// 104: CHECK found the attachment differing from `prevResult`.
    CheckMismatch,
    /// 105: `CNI_NETNS` names a namespace bulkhead refuses to adopt: not a
    /// network namespace, bulkheadd's own or host namespace, the root
    /// namespace, or one another container already holds.
    NetnsRefused,
}

impl Code {
    /// The number on the wire.
    pub fn number(self) -> u32 {
        match self {
            Code::IncompatibleVersion => 1,
            Code::UnsupportedField => 2,
            Code::UnknownContainer => 3,
            Code::InvalidEnv => 4,
            Code::Io => 5,
            Code::Decode => 6,
            Code::InvalidConfig => 7,
            Code::TryAgainLater => 11,
            Code::NotAvailable => 50,
            Code::NoSuchNetwork => 100,
            Code::AttachmentExists => 101,
            Code::DaemonFailed => 102,
            Code::NeedsApi => 103,
            Code::CheckMismatch => 104,
            Code::NetnsRefused => 105,
        }
    }

    /// The short `msg` that goes with the code.
    pub fn msg(self) -> &'static str {
        match self {
            Code::IncompatibleVersion => "Incompatible CNI version",
            Code::UnsupportedField => "Unsupported field in network configuration",
            Code::UnknownContainer => "Container unknown or does not exist",
            Code::InvalidEnv => "Invalid environment variables",
            Code::Io => "I/O failure",
            Code::Decode => "Failed to decode content",
            Code::InvalidConfig => "Invalid network configuration",
            Code::TryAgainLater => "Try again later",
            Code::NotAvailable => "Plugin not available",
            Code::NoSuchNetwork => "No such bulkhead network",
            Code::AttachmentExists => "Attachment already exists",
            Code::DaemonFailed => "bulkheadd failed the request",
            Code::NeedsApi => "bulkheadd lacks a required API call",
            Code::CheckMismatch => "Attachment differs from prevResult",
            Code::NetnsRefused => "Network namespace refused",
        }
    }
}

/// A failed CNI operation, as reported to the runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} (code {}): {details}", .code.msg(), .code.number())]
pub struct CniError {
    /// What kind of failure.
    pub code: Code,
    /// One line for a person: what failed and, where known, what to do.
    pub details: String,
}

impl CniError {
    /// An error with `code` and `details`.
    pub fn new(code: Code, details: impl Into<String>) -> CniError {
        let details: String = details.into();
        CniError {
            code,
            details: details.replace('\n', "; "),
        }
    }

    /// The spec's error result, in the protocol version `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        json!({
            "cniVersion": cni_version,
            "code": self.code.number(),
            "msg": self.code.msg(),
            "details": self.details,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_result_has_the_spec_keys() {
        let e = CniError::new(Code::InvalidConfig, "bulkhead.network: missing\nsecond");
        let v = e.to_json("1.1.0");
        assert_eq!(v["cniVersion"], "1.1.0");
        assert_eq!(v["code"], 7);
        assert_eq!(v["msg"], "Invalid network configuration");
        assert_eq!(v["details"], "bulkhead.network: missing; second");
        assert_eq!(v.as_object().unwrap().len(), 4);
    }

    #[test]
    fn own_codes_are_outside_the_reserved_range() {
        for c in [
            Code::NoSuchNetwork,
            Code::AttachmentExists,
            Code::DaemonFailed,
            Code::NeedsApi,
            Code::CheckMismatch,
            Code::NetnsRefused,
        ] {
            assert!(c.number() >= 100);
        }
    }
}
