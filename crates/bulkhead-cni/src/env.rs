//! The invocation parameters: the `CNI_*` environment variables.
//!
//! [`CniEnv::parse`] reads them through a lookup function (the process
//! environment in production, a map in tests) and checks what each command
//! needs: ADD and CHECK need `CNI_CONTAINERID`, `CNI_NETNS` and `CNI_IFNAME`;
//! DEL needs `CNI_CONTAINERID` and `CNI_IFNAME` (the namespace may be gone);
//! STATUS, GC and VERSION need nothing but `CNI_COMMAND`. `CNI_PATH` is never
//! required: this plugin delegates to no other plugin. Every missing or
//! invalid variable is named in one error (code 4).

use crate::error::{CniError, Code};

/// A CNI operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach.
    Add,
    /// Detach (idempotent).
    Del,
    /// Verify an attachment.
    Check,
    /// Is the plugin ready for ADD?
    Status,
    /// Remove attachments the runtime no longer knows.
    Gc,
    /// Which versions does the plugin speak?
    Version,
}

impl Command {
    /// Every command, in the order of the spec.
    pub const ALL: [Command; 6] = [
        Command::Add,
        Command::Del,
        Command::Check,
        Command::Status,
        Command::Gc,
        Command::Version,
    ];

    /// Parses `CNI_COMMAND`.
    pub fn parse(text: &str) -> Option<Command> {
        Some(match text {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            _ => return None,
        })
    }

    /// The command as spelled in `CNI_COMMAND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }
}

/// The parameters of one invocation, checked for its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniEnv {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID` (present for ADD, DEL, CHECK).
    pub container_id: Option<String>,
    /// `CNI_NETNS` (present for ADD and CHECK; optional for DEL).
    pub netns: Option<String>,
    /// `CNI_IFNAME` (present for ADD, DEL, CHECK).
    pub ifname: Option<String>,
    /// `CNI_ARGS`, as key-value pairs in order.
    pub args: Vec<(String, String)>,
}

/// Why the environment is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// Variables that are required but unset or empty.
    #[error("missing environment variables: {}", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// A variable with a value it may not have.
    #[error("invalid environment variable {name}={value:?}: {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
}

impl From<EnvError> for CniError {
    fn from(e: EnvError) -> CniError {
        CniError::new(Code::InvalidEnv, e.to_string())
    }
}

impl CniEnv {
    /// Reads and checks the variables through `get`.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<CniEnv, EnvError> {
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        let command_text = var("CNI_COMMAND").ok_or(EnvError::Missing(vec!["CNI_COMMAND"]))?;
        let command = Command::parse(&command_text).ok_or_else(|| EnvError::Invalid {
            name: "CNI_COMMAND",
            value: command_text.clone(),
            expected: "one of ADD, DEL, CHECK, STATUS, GC, VERSION",
        })?;
        let attachment = matches!(command, Command::Add | Command::Del | Command::Check);
        let needs_netns = matches!(command, Command::Add | Command::Check);
        let mut missing = Vec::new();
        let container_id = var("CNI_CONTAINERID");
        let netns = var("CNI_NETNS");
        let ifname = var("CNI_IFNAME");
        if attachment && container_id.is_none() {
            missing.push("CNI_CONTAINERID");
        }
        if needs_netns && netns.is_none() {
            missing.push("CNI_NETNS");
        }
        if attachment && ifname.is_none() {
            missing.push("CNI_IFNAME");
        }
        if !missing.is_empty() {
            return Err(EnvError::Missing(missing));
        }
        if let Some(id) = container_id.as_deref().filter(|_| attachment) {
            if !valid_container_id(id) {
                return Err(EnvError::Invalid {
                    name: "CNI_CONTAINERID",
                    value: id.to_owned(),
                    expected: "an alphanumeric character, then alphanumerics, '_', '.' or '-'",
                });
            }
        }
        if let Some(name) = ifname.as_deref().filter(|_| attachment) {
            if !valid_ifname(name) {
                return Err(EnvError::Invalid {
                    name: "CNI_IFNAME",
                    value: name.to_owned(),
                    expected: "a Linux interface name: 1-15 bytes, no '/', ':' or whitespace, not '.' or '..'",
                });
            }
        }
        let args = match var("CNI_ARGS") {
            Some(text) => parse_args(&text).ok_or(EnvError::Invalid {
                name: "CNI_ARGS",
                value: text,
                expected: "KEY=VALUE pairs separated by ';'",
            })?,
            None => Vec::new(),
        };
        Ok(CniEnv {
            command,
            container_id: container_id.filter(|_| attachment),
            netns: netns.filter(|_| attachment),
            ifname: ifname.filter(|_| attachment),
            args,
        })
    }
}

/// The spec's container id rule.
pub fn valid_container_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The kernel's interface name rule (`dev_valid_name`), plus no ':'.
pub fn valid_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

/// `FOO=BAR;ABC=123`; an empty item (a trailing `;`) is tolerated.
fn parse_args(text: &str) -> Option<Vec<(String, String)>> {
    text.split(';')
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (k, v) = item.split_once('=')?;
            (!k.is_empty()).then(|| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<CniEnv, EnvError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CniEnv::parse(|k| map.get(k).cloned())
    }

    #[test]
    fn add_needs_id_netns_and_ifname_all_named() {
        let e = parse(&[("CNI_COMMAND", "ADD")]).unwrap_err();
        assert_eq!(
            e,
            EnvError::Missing(vec!["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"])
        );
        assert!(e.to_string().contains("CNI_NETNS"));
    }

    #[test]
    fn del_does_not_need_the_netns() {
        let env = parse(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap();
        assert_eq!(env.netns, None);
        assert_eq!(env.ifname.as_deref(), Some("eth0"));
    }

    #[test]
    fn status_gc_and_version_need_only_the_command() {
        for c in ["STATUS", "GC", "VERSION"] {
            let env = parse(&[("CNI_COMMAND", c), ("CNI_IFNAME", "bad/name")]).unwrap();
            assert_eq!(env.ifname, None);
        }
    }

    #[test]
    fn bad_values_are_refused() {
        let base = [("CNI_COMMAND", "ADD"), ("CNI_NETNS", "/run/netns/x")];
        let with = |id: &str, ifname: &str| {
            let mut v = base.to_vec();
            v.push(("CNI_CONTAINERID", id));
            v.push(("CNI_IFNAME", ifname));
            parse(&v)
        };
        assert!(with("-abc", "eth0").is_err());
        assert!(with("abc def", "eth0").is_err());
        assert!(with("abc", "a-very-long-ifname").is_err());
        assert!(with("abc", "eth/0").is_err());
        assert!(with("a_b.c-1", "eth0").is_ok());
        assert!(parse(&[("CNI_COMMAND", "FROB")]).is_err());
    }

    #[test]
    fn args_are_key_value_pairs() {
        assert_eq!(
            parse_args("IgnoreUnknown=1;K8S_POD_NAME=web;").unwrap(),
            vec![
                ("IgnoreUnknown".to_owned(), "1".to_owned()),
                ("K8S_POD_NAME".to_owned(), "web".to_owned())
            ]
        );
        assert!(parse_args("novalue").is_none());
        assert!(parse_args("=x").is_none());
    }
}
