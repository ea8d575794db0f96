//! The seeded generator of the trace agreement test: random custom ACLs
//! per endpoint and random probes over a world of nodes (endpoints, the
//! host's addresses, the outside peer, a LAN peer). The same seed gives the
//! same ACLs and probes.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use bulkhead_model::AclRuleSpec;

/// SplitMix64: small, seedable, good enough for test generation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn range(&mut self, lo: u16, hi: u16) -> u16 {
        lo + (self.next() % u64::from(hi - lo + 1)) as u16
    }
}

/// Destination ports of probes that are not to a published port.
pub const DST_PORTS: (u16, u16) = (20000, 20150);
/// Source ports: probe `i` uses `SRC_BASE + i` (unique tuples).
pub const SRC_BASE: u16 = 30000;
/// The raw IP protocol probed (blocked inbound by the `current` profile).
pub const RAW_PROTO: u8 = 253;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// An endpoint on network `net`; `switch` when it has a programmable
    /// switch port (host-type rules only otherwise).
    Endpoint {
        net: usize,
        switch: bool,
    },
    Host,
    Outside,
}

#[derive(Debug, Clone)]
pub struct Node {
    /// What `trace --from` takes for it: the endpoint name or the address.
    pub label: String,
    pub ip: Ipv4Addr,
    pub ns: PathBuf,
    pub kind: NodeKind,
}

#[derive(Debug, Clone)]
pub struct Net {
    pub name: String,
    pub driver: &'static str,
    pub subnet: &'static str,
    pub gateway: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub struct Mapping {
    pub endpoint: usize,
    pub tcp: bool,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
}

#[derive(Debug, Clone)]
pub struct World {
    pub nodes: Vec<Node>,
    pub nets: Vec<Net>,
    pub mappings: Vec<Mapping>,
    /// The host's address nat traffic to the outside is masqueraded to.
    pub masquerade: Ipv4Addr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    Udp,
    Icmp,
    Raw,
}

impl Kind {
    pub fn protocol(self) -> String {
        match self {
            Kind::Tcp => "tcp".into(),
            Kind::Udp => "udp".into(),
            Kind::Icmp => "icmp".into(),
            Kind::Raw => RAW_PROTO.to_string(),
        }
    }
}

/// Probe classes that need a spec rule (§9, §6) of their own; the test
/// reports its counts by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Plain,
    /// A nat endpoint to a host address other than its network's gateway.
    NatHostNotGateway,
    /// UDP from an endpoint's port 67 (a DHCP server's offer).
    DhcpServer,
    /// An l2tunnel endpoint to a published port (spec §6: hairpin from
    /// another endpoint): the host delivers it itself (marked DNAT
    /// connections are routed by `main`, not into the fabric).
    TunnelHairpin,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub from: usize,
    pub src_ip: Ipv4Addr,
    pub forged: bool,
    pub to_ip: Ipv4Addr,
    /// The node that listens (the endpoint behind a published port).
    pub to_node: usize,
    pub kind: Kind,
    pub src_port: u16,
    pub dst_port: u16,
    pub listen_port: u16,
    pub dnat: bool,
    pub reply: bool,
    pub class: Class,
}

impl World {
    fn ports_of(&self, e: usize) -> Vec<u16> {
        self.mappings
            .iter()
            .filter(|m| m.endpoint == e)
            .map(|m| m.container_port)
            .collect()
    }

    /// Random custom rules for endpoint node `e` (ids `g<n>`).
    pub fn acls(&self, rng: &mut Rng, e: usize) -> Vec<AclRuleSpec> {
        let NodeKind::Endpoint { switch, .. } = self.nodes[e].kind else {
            return Vec::new();
        };
        let mut addrs: Vec<String> = self.nodes.iter().map(|n| n.ip.to_string()).collect();
        addrs.extend(self.nets.iter().map(|n| n.subnet.to_string()));
        addrs.push("192.0.2.0/24".into());
        let mut local_ports = self.ports_of(e);
        local_ports.extend([DST_PORTS.0, DST_PORTS.0 + 40, DST_PORTS.0 + 90]);
        let n = 3 + rng.below(5);
        (0..n)
            .map(|i| {
                let proto = *rng.pick(&["tcp", "udp", "icmp", "253", "any", "tcp", "udp"]);
                let ported = proto == "tcp" || proto == "udp";
                let mut r = AclRuleSpec {
                    id: Some(format!("g{i}")),
                    action: rng.pick(&["allow", "block"]).to_string(),
                    direction: rng.pick(&["in", "out"]).to_string(),
                    protocol: (proto != "any").then(|| proto.to_string()),
                    priority: Some(rng.range(100, 130).to_string()),
                    rule_type: Some(
                        if switch && rng.chance(50) {
                            "switch"
                        } else {
                            "host"
                        }
                        .into(),
                    ),
                    ..Default::default()
                };
                if ported && rng.chance(60) {
                    let lo = *rng.pick(&local_ports);
                    let hi = lo + rng.range(0, 60);
                    r.local_ports = Some(if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    });
                }
                if ported && rng.chance(20) {
                    let lo = rng.range(SRC_BASE, SRC_BASE + 1200);
                    r.remote_ports = Some(format!("{lo}-{}", lo + 300));
                }
                if rng.chance(50) {
                    let k = 1 + rng.below(2);
                    let v: Vec<String> = (0..k).map(|_| rng.pick(&addrs).clone()).collect();
                    r.remote_addresses = Some(v.join(","));
                }
                r
            })
            .collect()
    }

    /// The source address a raw-protocol flow has on the wire where its
    /// pair must be unique: a nat endpoint's flow to the outside is
    /// masqueraded to the uplink's address, and NAT cannot give a second
    /// port-less flow of the same pair another tuple (it drops it).
    fn raw_source(&self, from: usize, src: Ipv4Addr, forged: bool, to: usize) -> Ipv4Addr {
        let outside = self.nodes[to].kind == NodeKind::Outside
            && !self.nets.iter().any(|n| {
                bulkhead_model::Cidr::parse("subnet", n.subnet)
                    .is_ok_and(|c| c.contains(self.nodes[to].ip.into()))
            });
        match self.net_of(from) {
            Some(n) if n.driver == "nat" && !forged && outside => self.masquerade,
            _ => src,
        }
    }

    fn net_of(&self, node: usize) -> Option<&Net> {
        match self.nodes[node].kind {
            NodeKind::Endpoint { net, .. } => Some(&self.nets[net]),
            _ => None,
        }
    }

    /// Probe number `i`. `raw_pairs` keeps raw-protocol probes to one per
    /// address pair: conntrack tracks such flows by addresses alone, so a
    /// second probe of the pair would ride on the first one's entry. A
    /// masqueraded probe takes both its pairs, the sender's address and the
    /// one it is rewritten to: the host's entry holds the first as its
    /// original tuple, so a later probe from the far side straight to the
    /// endpoint's address would clash with it (conntrack drops a new flow
    /// whose reply tuple another entry already holds) and be lost to the
    /// earlier probe, not to a rule.
    pub fn probe(
        &self,
        rng: &mut Rng,
        i: usize,
        raw_pairs: &mut HashSet<(Ipv4Addr, Ipv4Addr)>,
    ) -> Spec {
        loop {
            if let Some(s) = self.try_probe(rng, i, raw_pairs) {
                if s.kind == Kind::Raw {
                    let src = self.raw_source(s.from, s.src_ip, s.forged, s.to_node);
                    for a in [src, s.src_ip] {
                        raw_pairs.insert((a.min(s.to_ip), a.max(s.to_ip)));
                    }
                }
                return s;
            }
        }
    }

    fn try_probe(
        &self,
        rng: &mut Rng,
        i: usize,
        raw_pairs: &HashSet<(Ipv4Addr, Ipv4Addr)>,
    ) -> Option<Spec> {
        let from = rng.below(self.nodes.len());
        let src = &self.nodes[from];
        let is_ep = matches!(src.kind, NodeKind::Endpoint { .. });
        let forged = is_ep && rng.chance(12);
        let kind = if forged {
            *rng.pick(&[Kind::Udp, Kind::Raw])
        } else {
            *rng.pick(&[
                Kind::Tcp,
                Kind::Tcp,
                Kind::Udp,
                Kind::Udp,
                Kind::Icmp,
                Kind::Raw,
            ])
        };
        let src_ip = if forged {
            let others: Vec<Ipv4Addr> = self
                .nodes
                .iter()
                .map(|n| n.ip)
                .filter(|ip| *ip != src.ip)
                .collect();
            if rng.chance(30) {
                Ipv4Addr::new(10, 71, 1, 200)
            } else {
                *rng.pick(&others)
            }
        } else {
            src.ip
        };
        let mut src_port = SRC_BASE + i as u16;
        let mut class = Class::Plain;
        if kind == Kind::Udp && is_ep && !forged && rng.chance(4) {
            src_port = 67;
            class = Class::DhcpServer;
        }
        let ported = matches!(kind, Kind::Tcp | Kind::Udp);
        let publish: Vec<&Mapping> = self
            .mappings
            .iter()
            .filter(|m| m.tcp == (kind == Kind::Tcp))
            .collect();
        let (to_ip, to_node, dst_port, listen_port, dnat) =
            if ported && !publish.is_empty() && rng.chance(15) {
                let m = *rng.pick(&publish);
                let hosts: Vec<Ipv4Addr> = self
                    .nodes
                    .iter()
                    .filter(|n| n.kind == NodeKind::Host)
                    .map(|n| n.ip)
                    .collect();
                let ip = m.host_ip.unwrap_or_else(|| *rng.pick(&hosts));
                (ip, m.endpoint, m.host_port, m.container_port, true)
            } else {
                let to = rng.below(self.nodes.len());
                let port = rng.range(DST_PORTS.0, DST_PORTS.1);
                (self.nodes[to].ip, to, port, port, false)
            };
        let dst = &self.nodes[to_node];
        let both_foreign = !is_ep && !matches!(dst.kind, NodeKind::Endpoint { .. }) && !dnat;
        if (dst.ns == src.ns && !dnat) || both_foreign || src_ip == to_ip {
            return None;
        }
        let raw_src = self.raw_source(from, src_ip, forged, to_node);
        if kind == Kind::Raw
            && [raw_src, src_ip]
                .iter()
                .any(|a| raw_pairs.contains(&(*a.min(&to_ip), *a.max(&to_ip))))
        {
            return None;
        }
        if dnat && !forged && self.net_of(from).is_some_and(|n| n.driver == "l2tunnel") {
            class = Class::TunnelHairpin;
        }
        if !forged && !dnat && dst.kind == NodeKind::Host {
            if let Some(net) = self.net_of(from) {
                if net.driver == "nat" && net.gateway != to_ip {
                    class = Class::NatHostNotGateway;
                }
            }
        }
        Some(Spec {
            from,
            src_ip,
            forged,
            to_ip,
            to_node,
            kind,
            src_port,
            dst_port,
            listen_port,
            dnat,
            reply: ported && !forged && class == Class::Plain && rng.chance(40),
            class,
        })
    }
}
