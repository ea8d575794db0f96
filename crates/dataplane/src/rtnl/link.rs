//! Links: veth pairs (peer made directly in a target namespace), bridges,
//! dummies, VXLAN and macvlan devices; state, master, MTU and group changes;
//! deletion; look-up by name and listing by prefix.
//!
//! Contract: every change names its link by interface name (the kernel
//! resolves it when it applies the request, so a batch may create a link and
//! then configure it); links created in another namespace are created there
//! atomically by the kernel (IFLA_NET_NS_FD), never moved afterwards.

use std::fs::File;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::wire::{self, Writer};
use super::{Batch, Rtnl, RtnlError};

/// A veth pair: `name` stays in the handle's namespace, `peer_name` is made
/// in `peer_netns` (or beside `name` when `None`).
#[derive(Debug, Clone, Default)]
pub struct VethSpec<'a> {
    pub name: &'a str,
    pub peer_name: &'a str,
    pub peer_netns: Option<&'a Path>,
    pub mac: Option<[u8; 6]>,
    pub peer_mac: Option<[u8; 6]>,
    /// Applied to both ends.
    pub mtu: Option<u32>,
    /// Create `name` administratively up (saves a request). The peer cannot
    /// be: the kernel opens it before the pair is joined (ENOTCONN), so set
    /// it up from its own namespace, where it gets its addresses anyway.
    pub up: bool,
}

/// A VXLAN device with static forwarding (learning off unless asked).
#[derive(Debug, Clone)]
pub struct VxlanSpec<'a> {
    pub name: &'a str,
    pub vni: u32,
    pub local: Option<IpAddr>,
    /// Index of the underlay device.
    pub underlay: Option<u32>,
    /// UDP destination port (IANA: 4789).
    pub port: u16,
    pub learning: bool,
    /// Answer ARP/NDP from the device's neighbour table (ARP suppression).
    pub proxy: bool,
    pub mtu: Option<u32>,
}

/// Macvlan modes, as the kernel numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MacvlanMode {
    Private = 1,
    Vepa = 2,
    #[default]
    Bridge = 4,
    Passthru = 8,
}

/// A macvlan on `parent` (an interface index in the handle's namespace),
/// made directly in `netns` when given.
#[derive(Debug, Clone, Default)]
pub struct MacvlanSpec<'a> {
    pub name: &'a str,
    pub parent: u32,
    pub mode: MacvlanMode,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub netns: Option<&'a Path>,
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub mtu: u32,
    pub master: Option<u32>,
    pub group: u32,
    pub mac: Option<[u8; 6]>,
    /// "veth", "bridge", "vxlan", "tun"…; `None` for plain devices such as lo.
    pub kind: Option<String>,
}

fn new_link(name: &str) -> Writer {
    new_link_flags(name, 0)
}

/// A create request; `up` (IFF_UP or 0) is applied as the link is registered.
fn new_link_flags(name: &str, up: u32) -> Writer {
    let flags = wire::NLM_F_ACK | wire::NLM_F_CREATE | wire::NLM_F_EXCL;
    let mut m = wire::request(wire::RTM_NEWLINK, flags);
    wire::ifinfo(&mut m, wire::AF_UNSPEC, 0, up, up).str(wire::IFLA_IFNAME, name);
    m
}

fn change_link(name: &str, flags: u32, change: u32) -> Writer {
    let mut m = wire::request(wire::RTM_NEWLINK, wire::NLM_F_ACK);
    wire::ifinfo(&mut m, wire::AF_UNSPEC, 0, flags, change).str(wire::IFLA_IFNAME, name);
    m
}

fn common(m: &mut Writer, mac: Option<[u8; 6]>, mtu: Option<u32>) {
    if let Some(mac) = mac {
        m.bytes(wire::IFLA_ADDRESS, &mac);
    }
    if let Some(mtu) = mtu {
        m.u32(wire::IFLA_MTU, mtu);
    }
}

/// One transmit and one receive queue, said at creation. A veth made
/// without them gets one queue per possible CPU, which the kernel then
/// cuts to one in service: cutting the transmit queues of a registered
/// device waits for an expedited RCU grace period under `rtnl_lock`, once
/// per side (~1.7 ms of each create here, more with more CPUs), for the
/// same single queue in service.
fn one_queue(m: &mut Writer) {
    m.u32(wire::IFLA_NUM_TX_QUEUES, 1)
        .u32(wire::IFLA_NUM_RX_QUEUES, 1);
}

fn open_netns(op: &'static str, object: &str, path: &Path) -> Result<Arc<File>, RtnlError> {
    File::open(path)
        .map(Arc::new)
        .map_err(|e| RtnlError::new(op, format!("{object} (netns {})", path.display()), e))
}

impl Batch {
    /// Creates a veth pair (see [`VethSpec`]).
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<&mut Self, RtnlError> {
        let up = if spec.up { wire::IFF_UP } else { 0 };
        let mut m = new_link_flags(spec.name, up);
        common(&mut m, spec.mac, spec.mtu);
        one_queue(&mut m);
        let info = m.nest_start(wire::IFLA_LINKINFO);
        m.str(wire::IFLA_INFO_KIND, "veth");
        let data = m.nest_start(wire::IFLA_INFO_DATA);
        let peer = m.nest_start(wire::VETH_INFO_PEER);
        wire::ifinfo(&mut m, wire::AF_UNSPEC, 0, 0, 0).str(wire::IFLA_IFNAME, spec.peer_name);
        common(&mut m, spec.peer_mac, spec.mtu);
        one_queue(&mut m);
        if let Some(path) = spec.peer_netns {
            let file = open_netns("create veth", spec.name, path)?;
            m.u32(
                wire::IFLA_NET_NS_FD,
                std::os::fd::AsRawFd::as_raw_fd(&*file) as u32,
            );
            self.fds.push(file);
        }
        m.nest_end(peer);
        m.nest_end(data);
        m.nest_end(info);
        Ok(self.push("create veth", spec.name, m))
    }

    fn create_simple(&mut self, op: &'static str, kind: &str, name: &str) -> &mut Self {
        let mut m = new_link(name);
        let info = m.nest_start(wire::IFLA_LINKINFO);
        m.str(wire::IFLA_INFO_KIND, kind);
        m.nest_end(info);
        self.push(op, name, m)
    }

    pub fn create_bridge(&mut self, name: &str) -> &mut Self {
        self.create_simple("create bridge", "bridge", name)
    }

    pub fn create_dummy(&mut self, name: &str) -> &mut Self {
        self.create_simple("create dummy", "dummy", name)
    }

    /// Creates a VXLAN device (see [`VxlanSpec`]).
    pub fn create_vxlan(&mut self, spec: &VxlanSpec<'_>) -> &mut Self {
        let mut m = new_link(spec.name);
        common(&mut m, None, spec.mtu);
        let info = m.nest_start(wire::IFLA_LINKINFO);
        m.str(wire::IFLA_INFO_KIND, "vxlan");
        let data = m.nest_start(wire::IFLA_INFO_DATA);
        m.u32(wire::IFLA_VXLAN_ID, spec.vni);
        match spec.local {
            Some(IpAddr::V4(a)) => m.bytes(wire::IFLA_VXLAN_LOCAL, &a.octets()),
            Some(IpAddr::V6(a)) => m.bytes(wire::IFLA_VXLAN_LOCAL6, &a.octets()),
            None => &mut m,
        };
        if let Some(dev) = spec.underlay {
            m.u32(wire::IFLA_VXLAN_LINK, dev);
        }
        m.bytes(wire::IFLA_VXLAN_PORT, &spec.port.to_be_bytes())
            .u8(wire::IFLA_VXLAN_LEARNING, spec.learning.into())
            .u8(wire::IFLA_VXLAN_PROXY, spec.proxy.into());
        m.nest_end(data);
        m.nest_end(info);
        self.push("create vxlan", spec.name, m)
    }

    /// Creates a macvlan device (see [`MacvlanSpec`]).
    pub fn create_macvlan(&mut self, spec: &MacvlanSpec<'_>) -> Result<&mut Self, RtnlError> {
        let mut m = new_link(spec.name);
        common(&mut m, spec.mac, spec.mtu);
        m.u32(wire::IFLA_LINK, spec.parent);
        if let Some(path) = spec.netns {
            let file = open_netns("create macvlan", spec.name, path)?;
            m.u32(
                wire::IFLA_NET_NS_FD,
                std::os::fd::AsRawFd::as_raw_fd(&*file) as u32,
            );
            self.fds.push(file);
        }
        let info = m.nest_start(wire::IFLA_LINKINFO);
        m.str(wire::IFLA_INFO_KIND, "macvlan");
        let data = m.nest_start(wire::IFLA_INFO_DATA);
        m.u32(wire::IFLA_MACVLAN_MODE, spec.mode as u32);
        m.nest_end(data);
        m.nest_end(info);
        Ok(self.push("create macvlan", spec.name, m))
    }

    pub fn set_up(&mut self, name: &str) -> &mut Self {
        let m = change_link(name, wire::IFF_UP, wire::IFF_UP);
        self.push("set up", name, m)
    }

    pub fn set_down(&mut self, name: &str) -> &mut Self {
        let m = change_link(name, 0, wire::IFF_UP);
        self.push("set down", name, m)
    }

    /// Enslaves `name` to the bridge (or other master) with index `master`;
    /// `None` releases it.
    pub fn set_master(&mut self, name: &str, master: Option<u32>) -> &mut Self {
        let mut m = change_link(name, 0, 0);
        m.u32(wire::IFLA_MASTER, master.unwrap_or(0));
        self.push("set master of", name, m)
    }

    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> &mut Self {
        let mut m = change_link(name, 0, 0);
        m.u32(wire::IFLA_MTU, mtu);
        self.push("set mtu of", name, m)
    }

    /// Sets the interface group (IFLA_GROUP), which nftables can match on.
    pub fn set_group(&mut self, name: &str, group: u32) -> &mut Self {
        let mut m = change_link(name, 0, 0);
        m.u32(wire::IFLA_GROUP, group);
        self.push("set group of", name, m)
    }

    /// Deletes a link (for a veth, both ends).
    pub fn delete_link(&mut self, name: &str) -> &mut Self {
        let mut m = wire::request(wire::RTM_DELLINK, wire::NLM_F_ACK);
        wire::ifinfo(&mut m, wire::AF_UNSPEC, 0, 0, 0).str(wire::IFLA_IFNAME, name);
        self.push("delete link", name, m)
    }

    /// Deletes every link of interface group `group` (non-zero) in the
    /// handle's namespace, in one `unregister_netdevice_many`: the kernel's
    /// RCU waits are paid once for all of them, not once per link. The
    /// kernel answers ENODEV when the group has no link.
    pub fn delete_group(&mut self, group: u32) -> &mut Self {
        let mut m = wire::request(wire::RTM_DELLINK, wire::NLM_F_ACK);
        wire::ifinfo(&mut m, wire::AF_UNSPEC, 0, 0, 0).u32(wire::IFLA_GROUP, group);
        self.push("delete links of group", group.to_string(), m)
    }
}

fn parse_link(ty: u16, payload: &[u8]) -> Option<Link> {
    if ty != wire::RTM_NEWLINK || payload.len() < 16 {
        return None;
    }
    let flags = wire::u32_of(&payload[8..12])?;
    let mut link = Link {
        index: wire::u32_of(&payload[4..8])?,
        name: String::new(),
        up: flags & wire::IFF_UP != 0,
        mtu: 0,
        master: None,
        group: 0,
        mac: None,
        kind: None,
    };
    for (t, v) in wire::Attrs(&payload[16..]) {
        match t {
            wire::IFLA_IFNAME => link.name = wire::str_of(v),
            wire::IFLA_MTU => link.mtu = wire::u32_of(v).unwrap_or(0),
            wire::IFLA_MASTER => link.master = wire::u32_of(v).filter(|&i| i != 0),
            wire::IFLA_GROUP => link.group = wire::u32_of(v).unwrap_or(0),
            wire::IFLA_ADDRESS => link.mac = v.try_into().ok(),
            wire::IFLA_LINKINFO => {
                link.kind = wire::Attrs(v)
                    .find(|(t, _)| *t == wire::IFLA_INFO_KIND)
                    .map(|(_, k)| wire::str_of(k));
            }
            _ => {}
        }
    }
    Some(link)
}

fn get_link(name: &str) -> Writer {
    let mut m = wire::request(wire::RTM_GETLINK, wire::NLM_F_ACK);
    wire::ifinfo(&mut m, wire::AF_UNSPEC, 0, 0, 0)
        .str(wire::IFLA_IFNAME, name)
        .u32(wire::IFLA_EXT_MASK, wire::RTEXT_FILTER_SKIP_STATS);
    m
}

impl Rtnl {
    /// Applies `batch` and then looks up the links `names`, all in one round
    /// trip: the way to learn the index of a link the batch just created.
    pub fn execute_and_find(
        &mut self,
        batch: &Batch,
        names: &[&str],
    ) -> Result<Vec<Option<Link>>, RtnlError> {
        let gets: Vec<Writer> = names.iter().map(|n| get_link(n)).collect();
        let msgs: Vec<&Writer> = batch.reqs.iter().map(|r| &r.msg).chain(&gets).collect();
        let first_get = batch.reqs.len();
        let mut found = vec![None; names.len()];
        let results = self.transact(&msgs, |i, h, p| {
            if let Some(slot) = i.checked_sub(first_get) {
                found[slot] = parse_link(h.ty, p);
            }
        })?;
        let ops = batch.reqs.iter().map(|r| (r.op, r.object.as_str()));
        let ops = ops.chain(names.iter().map(|n| ("find link", *n)));
        for ((op, object), res) in ops.zip(results) {
            if let Err(nack) = res {
                let e = RtnlError::refused(op, object, nack);
                if !(op == "find link" && e.is_not_found()) {
                    return Err(e);
                }
            }
        }
        Ok(found)
    }

    /// The link called `name`, or `None` if there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, RtnlError> {
        let m = get_link(name);
        let mut found = None;
        match self.query("find link", name, &m, |ty, p| found = parse_link(ty, p)) {
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
            Ok(()) => Ok(found),
        }
    }

    /// The index of the link called `name`, or `None`.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, RtnlError> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    /// Every link whose name starts with `prefix` (all links for ""), by index.
    pub fn links(&mut self, prefix: &str) -> Result<Vec<Link>, RtnlError> {
        let mut m = wire::request(wire::RTM_GETLINK, wire::NLM_F_ACK | wire::NLM_F_DUMP);
        wire::ifinfo(&mut m, wire::AF_UNSPEC, 0, 0, 0)
            .u32(wire::IFLA_EXT_MASK, wire::RTEXT_FILTER_SKIP_STATS);
        let mut out = Vec::new();
        self.query("list links", prefix, &m, |ty, p| {
            out.extend(parse_link(ty, p).filter(|l| l.name.starts_with(prefix)))
        })?;
        out.sort_by_key(|l| l.index);
        Ok(out)
    }
}
