//! Endpoint operations: an address from IPAM, a switch port (veth or TAP),
//! the host firewall of its namespace and the host's switch and driver
//! tables, all undone in reverse if a later step fails.
//!
//! Delete (see `docs/design.md`, "Deleting an endpoint"): when
//! [`Engine::delete_endpoint`] returns, the endpoint is durably gone from the
//! store and unreachable (its table elements, routes and neighbour entries
//! are gone, its port is down); the port device itself is destroyed in the
//! background ([`Kernel::remove_port_later`]), because the kernel's
//! `unregister_netdevice` waits 25–40 ms for RCU grace periods. Until then
//! the endpoint side of a veth still holds its name (and address) in the
//! namespace, so a create into a namespace with such a removal queued waits
//! for the queue first ([`Engine::settle`]).
//!
//! [`Kernel::remove_port_later`]: bulkhead_dataplane::kernel::Kernel::remove_port_later

use bulkhead_dataplane::kernel::{PortKind, PortSpec};
use bulkhead_model::{
    Endpoint, EndpointSpec, Id, IfAddr, IfName, Isolation, MacAddress, TapOptions,
};
use bulkhead_store::{Kind, Op, StoreExt};

use crate::error::{EngineError, Result};
use crate::records::EndpointRecord;
use crate::state::State;
use crate::undo::Undo;
use crate::Engine;

fn next_ifname(state: &State, namespace: Id) -> IfName {
    let taken: Vec<String> = state
        .endpoints_in_namespace(namespace)
        .map(|e| e.ifname.to_string())
        .collect();
    let name = (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !taken.contains(n))
        .unwrap_or_default();
    IfName::parse("ifname", &name).unwrap_or_else(|_| unreachable!("eth names are valid"))
}

/// The switch port of `endpoint` as the kernel makes it (see [`crate::drivers`]).
fn port_spec(
    endpoint: &Endpoint,
    network: &bulkhead_model::Network,
    namespace: &bulkhead_model::Namespace,
    tap: Option<&TapOptions>,
) -> PortSpec {
    // A process namespace has a network namespace (the veth's other end
    // goes there); a vm namespace has none (its port is a TAP).
    let kind = match &namespace.netns_path {
        Some(netns) => PortKind::Veth {
            netns: netns.clone(),
            ifname: endpoint.ifname.to_string(),
        },
        None => PortKind::Tap,
    };
    PortSpec {
        switch_port: endpoint.switch_port.to_string(),
        kind,
        tap: crate::tap::access(tap),
        mac: endpoint.mac_address.0,
        address: endpoint.ip_address.addr,
        prefix: endpoint.ip_address.prefix,
        gateway: network.gateway,
        attach: crate::drivers::port_attach(network),
    }
}

impl Engine {
    /// Creates an endpoint; `Ok(Err((ip, held)))` when its address must
    /// come from an address block this node does not hold yet (see
    /// [`crate::cluster`]).
    pub(crate) fn create_endpoint_in(
        &self,
        spec: EndpointSpec,
    ) -> Result<std::result::Result<Endpoint, (Option<std::net::IpAddr>, usize)>> {
        let req = spec.validate()?;
        let container_id = spec.container_id.clone();
        let mut inner = self.lock();
        if inner.state.has_endpoint(req.name.as_str()) {
            return Err(EngineError::Conflict(format!(
                "endpoint {:?} already exists",
                req.name.as_str()
            )));
        }
        let network = inner.state.network(req.network.as_str())?.clone();
        let namespace = inner.state.namespace(req.namespace.as_str())?.clone();
        crate::tap::check_vm_only(&spec, &namespace)?;
        let id = Id::random();
        let ifname = match req.ifname {
            Some(n)
                if inner
                    .state
                    .endpoints_in_namespace(namespace.id)
                    .any(|e| e.ifname == n) =>
            {
                return Err(EngineError::Conflict(format!(
                    "ifname {n}: namespace {:?} already has an interface of that name",
                    namespace.name.as_str()
                )))
            }
            Some(n) => n,
            None => next_ifname(&inner.state, namespace.id),
        };
        if let Some(container_id) = &container_id {
            inner.state.check_attachment(container_id, &ifname)?;
        }
        if let Some(ip) = req.ip {
            crate::address::check_requested(&network, ip)?;
        }
        let mut endpoint = Endpoint {
            id,
            name: req.name,
            network: network.id,
            namespace: namespace.id,
            ifname,
            ip_address: IfAddr {
                addr: std::net::Ipv4Addr::UNSPECIFIED.into(),
                prefix: network.subnets[0].prefix(),
            },
            mac_address: req
                .mac
                .unwrap_or_else(|| MacAddress::local_from(id.as_uuid().as_bytes())),
            switch_port: Endpoint::switch_port_name(&id),
            port_mappings: crate::published::check_host_ips(
                self.kernel.as_ref(),
                req.port_mappings,
            )?,
            acl_mode: req.acl_mode,
            acls: vec![],
        };
        crate::published::check_published(&inner.state, &endpoint)?;
        // The policy must hold before anything is stored.
        bulkhead_policy::Policy::from_endpoint(&network, namespace.isolation, &endpoint)?;
        // A deleted endpoint's veth may still be in this namespace, holding
        // its interface name, address and routes: let its removal finish.
        if namespace
            .netns_path
            .as_ref()
            .is_some_and(|p| inner.retiring.contains(p))
        {
            self.settle_locked(&mut inner);
        }
        let hint = match self.pick_in_blocks(&network, req.ip)? {
            crate::cluster::BlockPick::Anywhere => req.ip,
            crate::cluster::BlockPick::Free(ip) => Some(ip),
            crate::cluster::BlockPick::NeedBlock(ip, seen) => return Ok(Err((ip, seen))),
        };
        let key = id.to_string();
        let net_key = network.id.to_string();
        // One durable transaction: the record, its address and the intent
        // (plus the clearing of earlier operations' intents).
        let (ip, intent) = self
            .transaction_clearing(&mut inner, |t| {
                let ip = t.allocate(&net_key, hint, &key)?;
                endpoint.ip_address.addr = ip;
                crate::acl_rows::put_endpoint(
                    t,
                    &mut EndpointRecord::from_endpoint(&endpoint, container_id.clone())
                        .with_tap(req.tap),
                )?;
                let intent =
                    t.put_intent(Op::Create, Kind::Endpoints, &key, serde_json::Value::Null)?;
                Ok((ip, intent))
            })
            .map_err(|e| crate::address::refusal(e, &inner.state, &network, req.ip))?;
        endpoint.ip_address.addr = ip;
        // A deleted endpoint's host conntrack clean-up for this address may
        // still be queued: let it run (and every one queued before it)
        // before this endpoint can connect.
        if inner.forgetting.contains(&ip) {
            self.kernel.settle_flows();
            inner.forgetting.clear();
        }
        let mut undo = Undo::new();
        undo.push("store endpoint", || {
            self.store
                .transaction(|t| {
                    crate::acl_rows::delete_endpoint(t, &key)?;
                    t.release(&net_key, ip)?;
                    t.clear_intent(&intent.id).map(|_| ())
                })
                .map_err(|e| e.to_string())
        });
        let spec = port_spec(&endpoint, &network, &namespace, req.tap.as_ref());
        undo.push("switch port", move || {
            let detached = self.kernel.detach_port(&spec);
            self.kernel
                .delete_link(&spec.switch_port)
                .and(detached)
                .map_err(|e| e.to_string())
        });
        // Made down: it passes nothing until its tables are committed.
        let spec = self.create_port(
            &inner.state,
            &endpoint,
            &network,
            &namespace,
            req.tap.as_ref(),
        )?;
        // The state takes the endpoint now (tables are compiled from it) and
        // gives it back if programming fails: no copy of the whole state.
        let record = EndpointRecord::from_endpoint(&endpoint, container_id).with_tap(req.tap);
        let inner = &mut *inner;
        inner.state.insert_endpoint(record.clone());
        let mut host_done = false;
        let done = self
            .program_namespace(&mut inner.programmed, &inner.state, namespace.id)
            .and_then(|()| {
                self.program_switch_endpoint(
                    &mut inner.programmed,
                    &inner.state,
                    None,
                    Some(&record),
                )
            })
            .and_then(|()| {
                host_done = true;
                self.kernel.enable_port(&spec).map_err(EngineError::kernel)
            })
            .and_then(
                |()| match crate::dhcp::lease_of(&endpoint, &network, &namespace) {
                    Some(lease) => self.kernel.serve_dhcp(&lease).map_err(EngineError::kernel),
                    None => Ok(()),
                },
            );
        if let Err(e) = done {
            // Undo the tables too: each is diffed back from what it holds.
            inner.state.remove_endpoint(id);
            let mut back =
                self.program_namespace(&mut inner.programmed, &inner.state, namespace.id);
            if host_done {
                back = back.and(self.program_switch_endpoint(
                    &mut inner.programmed,
                    &inner.state,
                    Some(&record),
                    None,
                ));
            }
            if let Err(u) = back {
                tracing::warn!(endpoint = %record.name, error = %u, "undo tables failed");
            }
            return Err(e);
        }
        undo.commit();
        inner.pending_intents.push(intent.id);
        Ok(Ok(endpoint))
    }

    /// The endpoint's switch port, down, and for process endpoints its side
    /// in the namespace (reached through the namespace's checked open file,
    /// see `adopt.rs`). Returns the spec [`Kernel::enable_port`] takes.
    ///
    /// [`Kernel::enable_port`]: bulkhead_dataplane::kernel::Kernel::enable_port
    pub(crate) fn create_port(
        &self,
        state: &State,
        endpoint: &Endpoint,
        network: &bulkhead_model::Network,
        namespace: &bulkhead_model::Namespace,
        tap: Option<&TapOptions>,
    ) -> Result<PortSpec> {
        let spec = port_spec(endpoint, network, namespace, tap);
        let handle = match namespace.isolation {
            Isolation::Process => Some(self.netns_handle(state, namespace)?),
            Isolation::Vm => None,
        };
        let mut checked = spec.clone();
        if let (Some(h), PortKind::Veth { netns, .. }) = (&handle, &mut checked.kind) {
            *netns = h.path().to_path_buf();
        }
        self.kernel
            .create_port(&checked)
            .map_err(EngineError::kernel)?;
        Ok(spec)
    }

    /// Deletes an endpoint. On return it is durably gone from the store, its
    /// address is free, and it is unreachable: its elements in the host
    /// tables and its host firewall dispatch are gone, its switch port is
    /// retired ([`Kernel::retire_port`]: down, no route, no proxy
    /// neighbour). The port device is destroyed in the background
    /// ([`Engine::settle`] waits for it); its errors are logged.
    ///
    /// [`Kernel::retire_port`]: bulkhead_dataplane::kernel::Kernel::retire_port
    pub(crate) fn delete_endpoint_in(&self, name: &str) -> Result<()> {
        let mut inner = self.lock();
        let record = inner.state.endpoint(name)?.clone();
        let key = record.id.to_string();
        let spec = match (
            inner.state.networks.get(&record.network),
            inner.state.namespaces.get(&record.namespace),
        ) {
            (Some(n), Some(ns)) => Some(port_spec(&record.endpoint, n, ns, record.tap.as_ref())),
            _ => None,
        };
        // One durable transaction before the kernel is touched: the record
        // and its address go, the intent says the teardown is in flight
        // (reconcile removes whatever a crash leaves: unowned links, pins).
        let intent = self.transaction_clearing(&mut inner, |t| {
            crate::acl_rows::delete_endpoint(t, &key)?;
            t.release(&record.network.to_string(), record.ip_address.addr)?;
            t.put_intent(Op::Delete, Kind::Endpoints, &key, serde_json::Value::Null)
        })?;
        let inner = &mut *inner;
        inner.state.remove_endpoint(record.id);
        // A vm endpoint's guest is answered no more (a no-op for others).
        if let Some(PortKind::Tap) = spec.as_ref().map(|s| &s.kind) {
            self.kernel.stop_dhcp(record.switch_port.as_str());
        }
        let mut errors = Vec::new();
        if let Err(e) =
            self.program_switch_endpoint(&mut inner.programmed, &inner.state, Some(&record), None)
        {
            errors.push(e.to_string());
        }
        if let Err(e) =
            self.program_namespace(&mut inner.programmed, &inner.state, record.namespace)
        {
            errors.push(e.to_string());
        }
        if let Some(Err(e)) = spec.as_ref().map(|s| self.kernel.retire_port(s)) {
            errors.push(e.to_string());
        }
        // The durable commit is done and the port is out of service: its
        // destruction (the kernel's RCU waits) need not delay the caller.
        // Conntrack first: queued behind the port's removal it would wait
        // out that removal's RCU waits while the address is already free.
        self.kernel.forget_host_flows(record.ip_address.addr);
        inner.forgetting.insert(record.ip_address.addr);
        self.kernel.remove_port_later(record.switch_port.as_str());
        if let Some(PortKind::Veth { netns, .. }) = spec.map(|s| s.kind) {
            inner.retiring.insert(netns);
        }
        inner.pending_intents.push(intent.id);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Kernel(format!(
                "endpoint {name:?} removed, but: {}",
                errors.join("; ")
            )))
        }
    }

    pub fn endpoints(&self) -> Vec<EndpointRecord> {
        self.lock().state.endpoints.values().cloned().collect()
    }

    pub fn endpoint(&self, name: &str) -> Result<EndpointRecord> {
        self.lock().state.endpoint(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bulkhead_dataplane::fake::FakeKernel;
    use bulkhead_model::{EndpointSpec, NamespaceSpec};

    use crate::{test_kit, Engine};

    fn engine() -> (Engine, Arc<FakeKernel>) {
        test_kit::engine("10.77.0.0/24", &["x", "y"])
    }

    fn spec(name: &str, ns: &str) -> EndpointSpec {
        EndpointSpec {
            name: name.into(),
            network: "n".into(),
            namespace: ns.into(),
            ip: Some("10.77.0.9".into()),
            ..Default::default()
        }
    }

    /// The calls after the `n`th, without table and conntrack ones.
    fn calls_since(k: &FakeKernel, n: usize) -> Vec<String> {
        k.calls()[n..]
            .iter()
            .filter(|c| {
                !["apply", "flows", "delete_flows"]
                    .iter()
                    .any(|p| c.starts_with(p))
            })
            .map(|c| c.trim_end().to_owned())
            .collect()
    }

    #[test]
    fn delete_retires_the_port_and_queues_its_removal() {
        let (e, k) = engine();
        let a = e.create_endpoint(spec("a", "x")).expect("a");
        let port = a.switch_port.to_string();
        let n = k.calls().len();
        e.delete_endpoint("a").expect("delete");
        assert_eq!(
            calls_since(&k, n),
            [
                format!("retire_port {port}"),
                format!("remove_port_later {port}")
            ]
        );
        // Gone from the engine, not yet from the kernel.
        assert!(e.endpoint("a").is_err());
        assert!(k.links().contains(&port) && k.retired().contains(&port));
        assert_eq!(k.queued(), std::slice::from_ref(&port));
        e.settle();
        assert!(!k.links().contains(&port) && k.queued().is_empty());
    }

    #[test]
    fn a_create_into_a_namespace_with_a_queued_removal_settles_first() {
        let (e, k) = engine();
        let a = e.create_endpoint(spec("a", "x")).expect("a");
        e.delete_endpoint("a").expect("delete a");
        // Another namespace and another address: no wait.
        let n = k.calls().len();
        let b = e
            .create_endpoint(EndpointSpec {
                ip: Some("10.77.0.10".into()),
                ..spec("b", "y")
            })
            .expect("b");
        assert_eq!(
            calls_since(&k, n),
            [
                format!("create_port {}", b.switch_port),
                format!("enable_port {}", b.switch_port)
            ]
        );
        e.delete_endpoint("b").expect("delete b");
        // The same namespace: a's veth side still holds eth0 there until
        // the queue runs, so the create settles first (the fake, like the
        // kernel, would refuse the name).
        let n = k.calls().len();
        let a2 = e.create_endpoint(spec("a2", "x")).expect("a2");
        assert_eq!(a2.ifname, a.ifname);
        assert_eq!(
            calls_since(&k, n),
            [
                "settle".to_owned(),
                format!("create_port {}", a2.switch_port),
                format!("enable_port {}", a2.switch_port)
            ]
        );
        assert!(!k.links().contains(a.switch_port.as_str()));
        // Settled: the next create into x does not wait again.
        e.delete_endpoint("a2").expect("delete a2");
        e.settle();
        let n = k.calls().len();
        e.create_endpoint(spec("a3", "x")).expect("a3");
        assert!(!calls_since(&k, n).contains(&"settle".to_owned()));
    }

    #[test]
    fn a_deleted_namespace_made_again_does_not_wait_and_drop_settles() {
        let k = {
            let (e, k) = engine();
            e.create_endpoint(spec("a", "x")).expect("a");
            e.delete_endpoint("a").expect("delete a");
            e.delete_namespace("x").expect("delete x");
            e.create_namespace(NamespaceSpec {
                name: "x".into(),
                isolation: None,
                ..NamespaceSpec::default()
            })
            .expect("x again");
            let n = k.calls().len();
            e.create_endpoint(EndpointSpec {
                ip: Some("10.77.0.10".into()),
                ..spec("b", "x")
            })
            .expect("b");
            assert!(!calls_since(&k, n).contains(&"settle".to_owned()));
            assert_eq!(k.queued().len(), 1);
            k
        };
        assert!(k.queued().is_empty(), "dropping the engine settles");
    }

    #[test]
    fn reusing_a_deleted_endpoints_address_waits_for_its_conntrack_clean_up() {
        let (e, k) = engine();
        e.create_endpoint(spec("a", "x")).expect("a");
        e.delete_endpoint("a").expect("delete a");
        // Same address, another namespace: the queued clean-up of the
        // address's host conntrack entries runs before the new port exists.
        let n = k.calls().len();
        let b = e.create_endpoint(spec("b", "y")).expect("b");
        assert_eq!(
            calls_since(&k, n),
            [
                "settle_flows".to_owned(),
                format!("create_port {}", b.switch_port),
                format!("enable_port {}", b.switch_port)
            ]
        );
    }
}
