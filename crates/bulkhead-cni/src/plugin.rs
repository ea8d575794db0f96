//! One CNI invocation, from environment and stdin to output and exit status.
//!
//! [`run`] is the whole protocol: it checks the environment (code 4),
//! answers VERSION, decodes and checks the configuration (codes 6, 1, 2, 7),
//! then performs the command through a [`Backend`] and maps its failures to
//! codes per command. When bulkheadd is unreachable: ADD, CHECK, DEL and GC
//! fail with 11 (try again later) — DEL too, because bulkheadd keeps the
//! endpoint (address, published ports) in its store and would recreate it on
//! restart; STATUS answers 50. DEL of something that does not exist succeeds.
//! Errors carry the requested `cniVersion` when there is one.

use crate::backend::{AddRequest, AttachmentKey, Backend, BackendError, Scope};
use crate::config::{self, NetConf};
use crate::env::{CniEnv, Command};
use crate::error::{CniError, Code};
use crate::result::CniResult;
use crate::version::{LATEST, SUPPORTED};
use serde_json::{json, Value};

/// What the process prints and how it exits.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Exit 0, printing the value if there is one.
    Success(Option<Value>),
    /// Exit 1, printing the error result in `version`.
    Failure {
        /// The `cniVersion` of the error result.
        version: String,
        /// The error.
        error: CniError,
    },
}

/// Makes the backend for a checked configuration.
pub type BackendFactory<'a> = dyn FnOnce(&NetConf) -> Result<Box<dyn Backend>, CniError> + 'a;

/// Runs one invocation.
pub fn run(
    get_env: impl Fn(&str) -> Option<String>,
    stdin: &[u8],
    backend: Box<BackendFactory<'_>>,
) -> Outcome {
    let decoded = config::decode(stdin);
    let requested = decoded
        .as_ref()
        .ok()
        .and_then(|c| config::requested_version(c))
        .filter(|v| !v.is_empty())
        .unwrap_or(LATEST)
        .to_owned();
    let fail = |error: CniError| Outcome::Failure {
        version: requested.clone(),
        error,
    };
    let env = match CniEnv::parse(get_env) {
        Ok(env) => env,
        Err(e) => return fail(e.into()),
    };
    if env.command == Command::Version {
        return Outcome::Success(Some(json!({
            "cniVersion": requested,
            "supportedVersions": SUPPORTED,
        })));
    }
    let conf = match decoded
        .map_err(CniError::from)
        .and_then(|c| config::parse(&c, env.command).map_err(CniError::from))
    {
        Ok(conf) => conf,
        Err(e) => return fail(e),
    };
    let result = backend(&conf).and_then(|mut b| execute(&env, &conf, b.as_mut()));
    match result {
        Ok(value) => Outcome::Success(value),
        Err(error) => fail(error),
    }
}

fn execute(
    env: &CniEnv,
    conf: &NetConf,
    backend: &mut dyn Backend,
) -> Result<Option<Value>, CniError> {
    let scope = Scope {
        conf_name: conf.name.clone(),
        network: conf.bulkhead.network.clone(),
    };
    let key = || AttachmentKey {
        container_id: env.container_id.clone().unwrap_or_default(),
        ifname: env.ifname.clone().unwrap_or_default(),
    };
    let netns = env.netns.clone().unwrap_or_default();
    match env.command {
        Command::Add => add(conf, scope, key(), netns, backend).map(Some),
        Command::Del => match backend.del(&scope, &key()) {
            Ok(()) | Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(mapped(Command::Del, e)),
        },
        Command::Check => check(conf, &scope, &key(), &netns, backend).map(|()| None),
        Command::Status => status(conf, &scope, backend).map(|()| None),
        Command::Gc => gc(conf, &scope, backend).map(|()| None),
        Command::Version => unreachable!("VERSION is answered before the configuration is read"),
    }
}

/// A backend failure as the CNI error for `command`.
fn mapped(command: Command, e: BackendError) -> CniError {
    let code = match (&e, command) {
        (_, Command::Status) => Code::NotAvailable,
        (BackendError::Unreachable(_) | BackendError::Busy(_), _) => Code::TryAgainLater,
        (BackendError::NoSuchNetwork(_), _) => Code::NoSuchNetwork,
        (BackendError::NotFound(_), Command::Check) => Code::UnknownContainer,
        (BackendError::Exists(_), _) => Code::AttachmentExists,
        (BackendError::NetnsRefused(_), _) => Code::NetnsRefused,
        (BackendError::Rejected(_), Command::Add) => Code::InvalidConfig,
        (BackendError::Unsupported(_), _) => Code::NeedsApi,
        _ => Code::DaemonFailed,
    };
    let details = match &e {
        BackendError::Unreachable(m) => format!("{m}; retry once bulkheadd is running"),
        other => other.to_string(),
    };
    CniError::new(code, details)
}

fn add(
    conf: &NetConf,
    scope: Scope,
    key: AttachmentKey,
    netns: String,
    backend: &mut dyn Backend,
) -> Result<Value, CniError> {
    let prev = match &conf.prev_result {
        Some(v) => {
            Some(CniResult::from_prev(v).map_err(|e| CniError::new(Code::Decode, e.to_string()))?)
        }
        None => None,
    };
    let req = AddRequest {
        scope,
        create_network: conf.bulkhead.create_network.clone(),
        key,
        netns: netns.clone(),
        port_mappings: conf.port_mappings.clone(),
        acl_mode: conf.bulkhead.acl_mode.clone(),
        acls: conf.bulkhead.acls.clone(),
    };
    let attachment = backend.add(&req).map_err(|e| mapped(Command::Add, e))?;
    let ours = CniResult::for_attachment(&attachment, &netns, conf.dns.as_ref());
    let result = match prev {
        Some(prev) => prev.chain(ours),
        None => ours,
    };
    Ok(result.render(conf.version))
}

fn check(
    conf: &NetConf,
    scope: &Scope,
    key: &AttachmentKey,
    netns: &str,
    backend: &mut dyn Backend,
) -> Result<(), CniError> {
    let prev = conf.prev_result.as_ref().ok_or_else(|| {
        CniError::new(
            Code::InvalidConfig,
            "prevResult: missing; CHECK needs the result of ADD",
        )
    })?;
    let prev =
        CniResult::from_prev(prev).map_err(|e| CniError::new(Code::Decode, e.to_string()))?;
    let attachment = backend
        .check(scope, key)
        .map_err(|e| mapped(Command::Check, e))?;
    let mismatch = |what: String| Err(CniError::new(Code::CheckMismatch, what));
    let Some(index) = prev
        .interfaces
        .iter()
        .position(|i| i.name == key.ifname && i.sandbox.as_deref().is_none_or(|s| s == netns))
    else {
        return mismatch(format!(
            "prevResult has no interface {} in {netns}",
            key.ifname
        ));
    };
    let iface = &prev.interfaces[index];
    if let Some(mac) = &iface.mac {
        if !mac.eq_ignore_ascii_case(&attachment.mac) {
            return mismatch(format!(
                "interface {}: prevResult has MAC {mac}, bulkheadd has {}",
                key.ifname, attachment.mac
            ));
        }
    }
    let ip_of = |a: &str| a.split('/').next().unwrap_or(a).to_owned();
    if !prev
        .ips
        .iter()
        .any(|ip| ip_of(&ip.address) == ip_of(&attachment.address))
    {
        return mismatch(format!(
            "prevResult lacks the address {} bulkheadd has for {}",
            attachment.address, key.ifname
        ));
    }
    Ok(())
}

fn status(conf: &NetConf, scope: &Scope, backend: &mut dyn Backend) -> Result<(), CniError> {
    match backend.status(scope) {
        Err(BackendError::NoSuchNetwork(_)) if conf.bulkhead.create_network.is_some() => Ok(()),
        other => other.map_err(|e| mapped(Command::Status, e)),
    }
}

fn gc(conf: &NetConf, scope: &Scope, backend: &mut dyn Backend) -> Result<(), CniError> {
    let valid = conf.valid_attachments.clone().unwrap_or_default();
    let present = backend.list(scope).map_err(|e| mapped(Command::Gc, e))?;
    let mut failures = Vec::new();
    for key in present.into_iter().filter(|k| !valid.contains(k)) {
        if let Err(e) = backend.del(scope, &key) {
            failures.push(mapped(Command::Gc, e));
        }
    }
    match failures.first() {
        None => Ok(()),
        Some(first) => {
            let all: Vec<String> = failures.iter().map(|f| f.details.clone()).collect();
            Err(CniError::new(first.code, all.join("; ")))
        }
    }
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;
