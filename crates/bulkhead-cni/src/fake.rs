//! An in-memory bulkheadd for tests, kept in a JSON file between processes.
//!
//! [`FakeBackend`] implements [`Backend`] over `<dir>/state.json` so that the
//! conformance tests can run the real binary several times (ADD, then CHECK,
//! then DEL) and see one state. A fresh state knows one network, `web`
//! (10.88.0.0/24, gateway 10.88.0.1); networks with `bulkhead.driver` set are
//! created on demand. The file `<dir>/down` makes every call fail as if
//! bulkheadd were not running. Every stored attachment keeps the request's
//! port mappings, ACL mode and ACLs so tests can see what reached the backend.
//! The binary only uses it in debug builds (`BULKHEAD_CNI_FAKE_STATE`).

use crate::backend::{AddRequest, Attachment, AttachmentKey, Backend, BackendError, Scope};
use bulkhead_api::AclRuleSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A fake network: a /24.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeNetwork {
    /// The first three octets, e.g. `10.88.0`.
    pub prefix: String,
}

/// One stored attachment and what its ADD asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The CNI configuration name.
    pub conf_name: String,
    /// The bulkhead network.
    pub network: String,
    /// What ADD returned.
    pub attachment: Attachment,
    /// Requested ACL mode.
    pub acl_mode: Option<String>,
    /// Requested ACLs.
    pub acls: Vec<AclRuleSpec>,
}

/// The whole fake daemon state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeState {
    /// Networks by name.
    pub networks: BTreeMap<String, FakeNetwork>,
    /// Attachments, in creation order.
    pub attachments: Vec<Stored>,
    /// Calls seen, e.g. `add web c1 eth0`.
    pub calls: Vec<String>,
}

/// A file-backed fake daemon.
#[derive(Debug, Clone)]
pub struct FakeBackend {
    dir: PathBuf,
}

impl FakeBackend {
    /// A fake keeping its state in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> FakeBackend {
        FakeBackend { dir: dir.into() }
    }

    /// The state, or the seed state when there is none yet.
    pub fn load(&self) -> Result<FakeState, BackendError> {
        match std::fs::read(self.dir.join("state.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| BackendError::Failed(format!("fake state: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut state = FakeState::default();
                state.networks.insert(
                    "web".into(),
                    FakeNetwork {
                        prefix: "10.88.0".into(),
                    },
                );
                Ok(state)
            }
            Err(e) => Err(BackendError::Failed(format!("fake state: {e}"))),
        }
    }

    fn save(&self, state: &FakeState) -> Result<(), BackendError> {
        let bytes = serde_json::to_vec_pretty(state)
            .map_err(|e| BackendError::Failed(format!("fake state: {e}")))?;
        std::fs::write(self.dir.join("state.json"), bytes)
            .map_err(|e| BackendError::Failed(format!("fake state: {e}")))
    }

    /// Loads the state after checking the fake daemon is "running".
    fn up(&self, call: String) -> Result<FakeState, BackendError> {
        if self.dir.join("down").exists() {
            return Err(BackendError::Unreachable(format!(
                "cannot reach bulkheadd at {}/fake.sock: Connection refused (is bulkheadd running?)",
                self.dir.display()
            )));
        }
        let mut state = self.load()?;
        state.calls.push(call);
        Ok(state)
    }
}

fn in_scope(s: &Stored, scope: &Scope) -> bool {
    s.conf_name == scope.conf_name && s.network == scope.network
}

impl Backend for FakeBackend {
    fn add(&mut self, req: &AddRequest) -> Result<Attachment, BackendError> {
        let (net, key) = (&req.scope.network, &req.key);
        let mut state = self.up(format!("add {net} {} {}", key.container_id, key.ifname))?;
        if !state.networks.contains_key(net) {
            let Some(create) = &req.create_network else {
                self.save(&state)?;
                return Err(BackendError::NoSuchNetwork(net.clone()));
            };
            let prefix = create
                .subnets
                .first()
                .and_then(|s| s.strip_suffix(".0/24"))
                .unwrap_or("10.89.0")
                .to_owned();
            state.networks.insert(net.clone(), FakeNetwork { prefix });
        }
        let existing = state.attachments.iter().filter(|s| in_scope(s, &req.scope));
        if existing.clone().any(|s| &s.attachment.key == key) {
            return Err(BackendError::Exists(key.clone()));
        }
        let published = state
            .attachments
            .iter()
            .flat_map(|s| &s.attachment.port_mappings);
        for (taken, wanted) in published.flat_map(|t| req.port_mappings.iter().map(move |w| (t, w)))
        {
            if (taken.host_port, &taken.protocol) == (wanted.host_port, &wanted.protocol) {
                return Err(BackendError::Rejected(format!(
                    "publish {}: host port already published",
                    wanted.to_publish()
                )));
            }
        }
        let prefix = state.networks[net].prefix.clone();
        let used: Vec<String> = state
            .attachments
            .iter()
            .map(|s| s.attachment.address.clone())
            .collect();
        let host = (2..255)
            .find(|h| !used.contains(&format!("{prefix}.{h}/24")))
            .ok_or_else(|| BackendError::Failed(format!("network {net} is full")))?;
        let attachment = Attachment {
            key: key.clone(),
            netns: Some(req.netns.clone()),
            address: format!("{prefix}.{host}/24"),
            mac: format!("02:42:0a:58:00:{host:02x}"),
            gateway: Some(format!("{prefix}.1")),
            host_ifname: format!("bh{host:04x}"),
            port_mappings: req.port_mappings.clone(),
        };
        state.attachments.push(Stored {
            conf_name: req.scope.conf_name.clone(),
            network: net.clone(),
            attachment: attachment.clone(),
            acl_mode: req.acl_mode.clone(),
            acls: req.acls.clone(),
        });
        self.save(&state)?;
        Ok(attachment)
    }

    fn del(&mut self, scope: &Scope, key: &AttachmentKey) -> Result<(), BackendError> {
        let mut state = self.up(format!(
            "del {} {} {}",
            scope.network, key.container_id, key.ifname
        ))?;
        state
            .attachments
            .retain(|s| !(in_scope(s, scope) && &s.attachment.key == key));
        self.save(&state)
    }

    fn check(&mut self, scope: &Scope, key: &AttachmentKey) -> Result<Attachment, BackendError> {
        let state = self.up(format!(
            "check {} {} {}",
            scope.network, key.container_id, key.ifname
        ))?;
        self.save(&state)?;
        state
            .attachments
            .iter()
            .find(|s| in_scope(s, scope) && &s.attachment.key == key)
            .map(|s| s.attachment.clone())
            .ok_or_else(|| BackendError::NotFound(key.clone()))
    }

    fn list(&mut self, scope: &Scope) -> Result<Vec<AttachmentKey>, BackendError> {
        let state = self.up(format!("list {}", scope.network))?;
        self.save(&state)?;
        Ok(state
            .attachments
            .iter()
            .filter(|s| in_scope(s, scope))
            .map(|s| s.attachment.key.clone())
            .collect())
    }

    fn status(&mut self, scope: &Scope) -> Result<(), BackendError> {
        let state = self.up(format!("status {}", scope.network))?;
        self.save(&state)?;
        if state.networks.contains_key(&scope.network) {
            Ok(())
        } else {
            Err(BackendError::NoSuchNetwork(scope.network.clone()))
        }
    }
}
