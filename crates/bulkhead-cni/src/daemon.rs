//! [`Backend`] over bulkheadd's API (`bulkhead_api::Client`).
//!
//! Objects are named deterministically so DEL and CHECK need no lookup call:
//! the namespace of a container is `cni-<id12>-<fnv(id)>` and the endpoint
//! of an attachment `cni-<id12>-<fnv(conf, id, ifname)>` (`id12` is the first
//! 12 characters of the container id, `fnv` 32 bits of FNV-1a 64, in hex).
//! ADD ensures the network (creating it when `bulkhead.driver` is set),
//! adopts `CNI_NETNS` as a namespace, creates the endpoint with the container
//! id, ifname and port mappings, then adds the ACLs, removing the endpoint
//! again if any step after it fails. DEL removes the endpoint (missing is
//! success) and the namespace once it has no endpoints left.
//!
//! The namespace adopts the runtime's netns (`NamespaceSpec.netns_path`,
//! the container id joining it): the daemon never deletes it, and a retried
//! ADD finds it again. GC reads each endpoint's `container_id`. A daemon
//! without these fields refuses the unknown request field (400), which is
//! reported as code 103 (unsupported), not as a configuration error.

use crate::backend::{
    AddRequest, Attachment, AttachmentKey, Backend, BackendError, PortMap, Scope,
};
use bulkhead_api::{
    Client, ClientError, EndpointInfo, EndpointSpec, ErrorCode, NamespaceSpec, NetworkInfo,
};
use std::path::Path;

/// The daemon-backed implementation.
#[derive(Debug)]
pub struct DaemonBackend {
    client: Client,
    runtime: tokio::runtime::Runtime,
}

/// 64-bit FNV-1a: stable across builds, unlike `DefaultHasher`.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        let sep: &[u8] = if i == 0 { b"" } else { b"\0" };
        for b in sep.iter().chain(part.as_bytes()) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The bulkhead namespace of a container (a pod sandbox).
pub fn namespace_name(container_id: &str) -> String {
    format!(
        "cni-{}-{:08x}",
        short(container_id),
        fnv1a(&[container_id]) as u32
    )
}

/// The bulkhead endpoint of an attachment.
pub fn endpoint_name(scope: &Scope, key: &AttachmentKey) -> String {
    let hash = fnv1a(&[&scope.conf_name, &key.container_id, &key.ifname]);
    format!("cni-{}-{:08x}", short(&key.container_id), hash as u32)
}

/// The container id an endpoint was created for (GC needs it).
fn endpoint_container_id(info: &EndpointInfo) -> Result<String, BackendError> {
    info.container_id.clone().ok_or_else(|| {
        BackendError::Unsupported(format!(
            "cannot tell which container endpoint {} belongs to: this bulkheadd does not report \
             EndpointInfo.container_id (see docs/cni.md \"API additions\")",
            info.name
        ))
    })
}

/// A daemon from before namespace adoption refusing `netns_path` as an
/// unknown field. Such a daemon names no field, so this one test reads the
/// message (serde's wording); a current daemon's refusals carry `field`.
fn is_unknown_field(e: &ClientError) -> bool {
    matches!(e, ClientError::Api(api) if api.code == ErrorCode::BadRequest
        && api.field.is_none()
        && api.message.contains("unknown field"))
}

/// A client failure as a backend error; `NotFound` is the caller's business.
fn from_client(e: ClientError) -> BackendError {
    match &e {
        ClientError::Connect { .. } | ClientError::Http { .. } => {
            BackendError::Unreachable(e.to_string())
        }
        ClientError::Api(api) => match api.code {
            ErrorCode::BadRequest | ErrorCode::Conflict => {
                BackendError::Rejected(api.message.clone())
            }
            ErrorCode::Unavailable => BackendError::Busy(api.message.clone()),
            _ => BackendError::Failed(api.message.clone()),
        },
        _ => BackendError::Failed(e.to_string()),
    }
}

/// bulkheadd refusing the namespace itself (`invalid netns_path …`).
fn is_netns_refusal(e: &ClientError) -> bool {
    matches!(e, ClientError::Api(api) if api.code == ErrorCode::BadRequest
        && api.field.as_deref() == Some("netns_path"))
}

fn api_message(e: &ClientError) -> String {
    match e {
        ClientError::Api(api) => api.message.clone(),
        other => other.to_string(),
    }
}

fn is_not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::Api(api) if api.code == ErrorCode::NotFound)
}

fn is_conflict(e: &ClientError) -> bool {
    matches!(e, ClientError::Api(api) if api.code == ErrorCode::Conflict)
}

/// `10.0.0.5` in `10.0.0.0/24` → `10.0.0.5/24`; CIDR input is kept.
fn with_prefix(address: &str, network: &NetworkInfo) -> String {
    if address.contains('/') {
        return address.to_owned();
    }
    let v6 = address.contains(':');
    let prefix = network
        .subnets
        .iter()
        .find(|s| s.contains(':') == v6)
        .and_then(|s| s.split_once('/'))
        .map(|(_, p)| p.to_owned())
        .unwrap_or_else(|| if v6 { "128" } else { "32" }.to_owned());
    format!("{address}/{prefix}")
}

fn port_map(p: &bulkhead_api::PortMappingInfo) -> PortMap {
    PortMap {
        host_port: p.host_port,
        container_port: p.container_port,
        protocol: p.protocol.clone(),
        host_ip: p.host_ip.as_deref().and_then(|ip| ip.parse().ok()),
    }
}

impl DaemonBackend {
    /// Adopts `netns` as namespace `name` with `container_id` in it (the
    /// daemon never deletes it). Same name and path again is idempotent; a
    /// leftover namespace of the same container in another netns (a
    /// restarted container whose DEL was lost) is replaced when empty.
    fn adopt_namespace(
        &self,
        name: &str,
        netns: &str,
        container_id: &str,
    ) -> Result<String, BackendError> {
        let create = NamespaceSpec {
            name: name.to_owned(),
            isolation: Some("process".into()),
            netns_path: Some(netns.to_owned()),
            container_id: Some(container_id.to_owned()),
        };
        for _ in 0..2 {
            let err = match self
                .runtime
                .block_on(self.client.namespace_create(create.clone()))
            {
                Ok(ns) => return Ok(ns.name),
                Err(e) => e,
            };
            if is_unknown_field(&err) {
                return Err(BackendError::Unsupported(format!(
                    "cannot attach {netns} as namespace {name}: this bulkheadd cannot adopt a \
                     runtime-created network namespace ({err})"
                )));
            }
            if is_netns_refusal(&err) {
                return Err(BackendError::NetnsRefused(format!(
                    "CNI_NETNS {netns}: {}",
                    api_message(&err)
                )));
            }
            if !is_conflict(&err) {
                return Err(from_client(err));
            }
            let ns = self
                .runtime
                .block_on(self.client.namespace_inspect(name))
                .map_err(from_client)?;
            if !ns.adopted || !ns.endpoints.is_empty() {
                return Err(BackendError::Rejected(format!(
                    "namespace {name} is already attached to {} (container {container_id} in {netns})",
                    ns.netns_path.unwrap_or_default()
                )));
            }
            match self.runtime.block_on(self.client.namespace_remove(name)) {
                Err(e) if !is_not_found(&e) => return Err(from_client(e)),
                _ => {}
            }
        }
        Err(BackendError::Busy(format!(
            "namespace {name} keeps changing; try again"
        )))
    }

    /// A backend for the socket at `socket`.
    pub fn new(socket: &Path) -> std::io::Result<DaemonBackend> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(DaemonBackend {
            client: Client::new(socket),
            runtime,
        })
    }

    fn attachment(
        &self,
        key: &AttachmentKey,
        info: &EndpointInfo,
    ) -> Result<Attachment, BackendError> {
        let network = self
            .runtime
            .block_on(self.client.network_inspect(&info.network))
            .map_err(from_client)?;
        let netns = match self
            .runtime
            .block_on(self.client.namespace_inspect(&info.namespace))
        {
            Ok(ns) => ns.netns_path,
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(from_client(e)),
        };
        Ok(Attachment {
            key: key.clone(),
            netns,
            address: with_prefix(&info.ip_address, &network),
            mac: info.mac_address.clone(),
            gateway: network.gateway.clone(),
            host_ifname: info.switch_port.clone(),
            port_mappings: info.port_mappings.iter().map(port_map).collect(),
        })
    }

    fn ensure_network(&self, req: &AddRequest) -> Result<(), BackendError> {
        let name = &req.scope.network;
        match self.runtime.block_on(self.client.network_inspect(name)) {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => match &req.create_network {
                Some(create) => match self
                    .runtime
                    .block_on(self.client.network_create(create.clone()))
                {
                    Ok(_) => Ok(()),
                    Err(e) if is_conflict(&e) => Ok(()), // created concurrently
                    Err(e) => Err(from_client(e)),
                },
                None => Err(BackendError::NoSuchNetwork(name.clone())),
            },
            Err(e) => Err(from_client(e)),
        }
    }

    /// Best-effort undo of a half-done ADD.
    fn undo_add(&self, endpoint: &str, key: &AttachmentKey) {
        let _ = self.runtime.block_on(self.client.endpoint_remove(endpoint));
        self.release_namespace(&key.container_id).ok();
    }

    /// Removes the container's namespace once it holds no endpoint.
    fn release_namespace(&self, container_id: &str) -> Result<(), BackendError> {
        let name = namespace_name(container_id);
        match self.runtime.block_on(self.client.namespace_inspect(&name)) {
            Ok(ns) if ns.endpoints.is_empty() => {}
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(from_client(e)),
        }
        match self.runtime.block_on(self.client.namespace_remove(&name)) {
            Err(e) if !is_not_found(&e) => Err(from_client(e)),
            _ => Ok(()),
        }
    }
}

impl Backend for DaemonBackend {
    fn add(&mut self, req: &AddRequest) -> Result<Attachment, BackendError> {
        self.ensure_network(req)?;
        let namespace = self.adopt_namespace(
            &namespace_name(&req.key.container_id),
            &req.netns,
            &req.key.container_id,
        )?;
        let name = endpoint_name(&req.scope, &req.key);
        let create = EndpointSpec {
            name: name.clone(),
            network: req.scope.network.clone(),
            namespace,
            publish: req.port_mappings.iter().map(PortMap::to_publish).collect(),
            acl_mode: req.acl_mode.clone(),
            ifname: Some(req.key.ifname.clone()),
            container_id: Some(req.key.container_id.clone()),
            ..EndpointSpec::default()
        };
        let info = match self.runtime.block_on(self.client.endpoint_create(create)) {
            Ok(info) => info,
            Err(e)
                if is_conflict(&e)
                    && self
                        .runtime
                        .block_on(self.client.endpoint_inspect(&name))
                        .is_ok() =>
            {
                return Err(BackendError::Exists(req.key.clone()));
            }
            Err(e) => {
                self.release_namespace(&req.key.container_id).ok();
                return Err(from_client(e));
            }
        };
        for rule in &req.acls {
            if let Err(e) = self
                .runtime
                .block_on(self.client.acl_add(&name, rule.clone()))
            {
                self.undo_add(&name, &req.key);
                return Err(from_client(e));
            }
        }
        self.attachment(&req.key, &info)
            .inspect_err(|_| self.undo_add(&name, &req.key))
    }

    fn del(&mut self, scope: &Scope, key: &AttachmentKey) -> Result<(), BackendError> {
        let name = endpoint_name(scope, key);
        match self.runtime.block_on(self.client.endpoint_remove(&name)) {
            Err(e) if !is_not_found(&e) => return Err(from_client(e)),
            _ => {}
        }
        self.release_namespace(&key.container_id)
    }

    fn check(&mut self, scope: &Scope, key: &AttachmentKey) -> Result<Attachment, BackendError> {
        let name = endpoint_name(scope, key);
        let info = match self.runtime.block_on(self.client.endpoint_inspect(&name)) {
            Ok(info) => info,
            Err(e) if is_not_found(&e) => return Err(BackendError::NotFound(key.clone())),
            Err(e) => return Err(from_client(e)),
        };
        if info.network != scope.network || info.ifname.as_deref() != Some(key.ifname.as_str()) {
            return Err(BackendError::NotFound(key.clone()));
        }
        self.attachment(key, &info)
    }

    fn list(&mut self, scope: &Scope) -> Result<Vec<AttachmentKey>, BackendError> {
        let endpoints = self
            .runtime
            .block_on(self.client.endpoint_list())
            .map_err(from_client)?;
        let mut keys = Vec::new();
        for info in endpoints
            .iter()
            .filter(|e| e.network == scope.network && e.name.starts_with("cni-"))
        {
            let Some(ifname) = info.ifname.clone() else {
                continue;
            };
            let key = AttachmentKey {
                container_id: endpoint_container_id(info)?,
                ifname,
            };
            if endpoint_name(scope, &key) == info.name {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    fn status(&mut self, scope: &Scope) -> Result<(), BackendError> {
        let health = self
            .runtime
            .block_on(self.client.health())
            .map_err(from_client)?;
        if health.status != "ok" {
            return Err(BackendError::Busy(format!(
                "bulkheadd reports status {:?}",
                health.status
            )));
        }
        match self
            .runtime
            .block_on(self.client.network_inspect(&scope.network))
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Err(BackendError::NoSuchNetwork(scope.network.clone())),
            Err(e) => Err(from_client(e)),
        }
    }
}

#[cfg(test)]
#[path = "daemon_tests.rs"]
mod tests;
