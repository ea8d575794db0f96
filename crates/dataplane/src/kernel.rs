//! The kernel as the engine sees it: a small trait with one real
//! implementation ([`crate::host::HostKernel`], netlink in-process) and a
//! recording fake ([`crate::fake::FakeKernel`]) for orchestration tests.
//!
//! Contract: every method is one step of an operation and either succeeds
//! or leaves nothing half-made that it created itself (a failed `create_port`
//! removes the link it made). Table changes go through [`Kernel::apply`] as
//! one nf_tables transaction per call: all of `ops` or none.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bulkhead_policy::diff::Op;
use bulkhead_policy::ir::{Family, Table};

/// The changes to one nf_tables table: `ops` from the policy crate's diff,
/// applied to `current` (the table as the kernel holds it; `None` when the
/// ops create it), after destroying the table first when `replace` is set
/// (reconcile: whatever an earlier run left is dropped in the same
/// transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChange<'a> {
    pub family: Family,
    pub table: String,
    pub current: Option<&'a Table>,
    pub replace: bool,
    pub ops: Vec<Op>,
}

mod error;
pub use error::KernelError;

pub type Result<T> = std::result::Result<T, KernelError>;

/// How a switch port reaches its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortKind {
    /// A veth pair whose peer is created directly inside `netns`, named `ifname` there.
    Veth { netns: PathBuf, ifname: String },
    /// A persistent TAP device that a VMM opens (vm isolation).
    Tap,
}

/// How a TAP switch port is made: its owner and group (who besides root
/// may attach, e.g. an unprivileged VMM) and `IFF_MULTI_QUEUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TapAccess {
    pub owner: Option<u32>,
    pub group: Option<u32>,
    pub multi_queue: bool,
}

/// How a switch port joins its network's switch (see `docs/drivers.md`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PortAttach {
    /// A routed port (nat): host route to the endpoint, proxy ARP on the port.
    #[default]
    Routed,
    /// A routed port whose address is also answered for on `uplink` by a
    /// proxy neighbour entry (l2bridge): the LAN reaches the endpoint by its
    /// IP at the host's MAC. With `hairpin` (l2tunnel), a permanent
    /// neighbour entry `address -> uplink MAC` on the uplink too, so that
    /// endpoint traffic policy-routed to the uplink comes back through the
    /// LAN switch.
    Uplink { uplink: String, hairpin: bool },
    /// A port enslaved to the bridge `bridge` (transparent, overlay), with
    /// the bridge's MTU on both ends of the veth.
    Bridge { bridge: String },
}

/// A switch port (see `docs/design.md`): routed, the host end gets proxy ARP
/// and a host route to the endpoint address; bridged, it is a port of the
/// network's bridge; a veth peer gets the address, the MAC and a default
/// route via the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub switch_port: String,
    pub kind: PortKind,
    /// Who may open a [`PortKind::Tap`] port and whether it is multi-queue
    /// (ignored for veth ports).
    pub tap: TapAccess,
    pub mac: [u8; 6],
    pub address: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub attach: PortAttach,
}

/// The switch of a network whose driver is not nat (see `docs/drivers.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchKind {
    /// A port-less bridge (routed ports published on `uplink`); l2bridge.
    Routed { uplink: String },
    /// A bridge with `uplink` enslaved (transparent).
    Bridge { uplink: String },
    /// A bridge with a VXLAN device `vxlan` (VNI `vni`, UDP 4789, learning
    /// off, ARP answered from its neighbour table) over `uplink`; MTU =
    /// uplink MTU - 50 on the VXLAN device and the bridge.
    Overlay {
        vxlan: String,
        uplink: String,
        vni: u32,
    },
    /// A port-less bridge plus policy routing (l2tunnel): packets from the
    /// network's `subnet` that do not arrive on `uplink` or from the host
    /// itself are routed by table `table`, which sends the subnet out of
    /// `uplink` (and the rest via `router`).
    Tunnel {
        uplink: String,
        subnet: (IpAddr, u8),
        router: Option<IpAddr>,
        table: u32,
    },
}

/// A network's switch: its bridge `name` (`bhn…`) and the driver's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchSpec {
    pub name: String,
    pub kind: SwitchKind,
}

/// An endpoint of an overlay network on another host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteEndpoint {
    pub ip: IpAddr,
    pub mac: [u8; 6],
    /// The underlay address of the host that holds it (VXLAN destination).
    pub host: IpAddr,
}

/// The packet-mark bit of connections a published port DNATed: the nat
/// table sets it on every packet of such a connection (both directions),
/// and l2tunnel's policy routing looks marked packets up in `main`, so the
/// host delivers a hairpin from an l2tunnel endpoint to a published port
/// itself instead of sending it into the fabric (where conntrack could not
/// follow it: see `docs/drivers.md`, "l2tunnel"). One bit, so marks that
/// other software on the host sets are kept. Defined with the nat table
/// that sets it (`bulkhead_policy::compile::nat`).
pub const DNAT_MARK: u32 = bulkhead_policy::compile::nat::DNAT_MARK;

/// The interface group (`IFLA_GROUP`) of retired switch ports in the host
/// namespace: down, unreachable, waiting to be destroyed (all of them in
/// one kernel call; see [`Kernel::retire_port`]). No live link is ever in it.
pub const RETIRED_GROUP: u32 = 0x6268_0d1e;

/// The identity of a network namespace: device and inode of its nsfs file
/// (every path naming the same namespace, a pin or `/proc/PID/ns/net`,
/// has the same pair, and no other namespace has it while it lives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetnsId {
    pub dev: u64,
    pub ino: u64,
}

impl std::fmt::Display for NetnsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// Why a namespace may never be adopted (see [`Kernel::protected_netns`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protected {
    /// The namespace this kernel treats as the host (switch tables, ports).
    Host,
    /// The namespace the daemon process itself ran in at start.
    Daemon,
    /// The machine's root namespace (`/proc/1/ns/net`).
    Root,
}

impl std::fmt::Display for Protected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protected::Host => "bulkheadd's host namespace",
            Protected::Daemon => "bulkheadd's own namespace",
            Protected::Root => "the root namespace (/proc/1/ns/net)",
        })
    }
}

/// A network namespace held open for one operation, checked to be the
/// expected one *after* it was opened ([`Kernel::open_netns`]): `path()`
/// names that open file (`/proc/self/fd/N`), so every later open in the
/// operation reaches this very namespace even if the original path is
/// re-bound meanwhile.
#[derive(Debug)]
pub struct NetnsHandle {
    path: PathBuf,
    _file: Option<std::fs::File>,
}

impl NetnsHandle {
    /// A handle that holds `file` open and names it by its descriptor.
    pub fn held(file: std::fs::File) -> Self {
        use std::os::fd::AsRawFd;
        Self {
            path: PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())),
            _file: Some(file),
        }
    }

    /// A handle that is only the path (the fake kernel).
    pub fn unheld(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            _file: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A tracked connection, enough to delete it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Flow {
    pub protocol: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
}

/// The kernel operations the engine needs.
pub trait Kernel: Send + Sync + std::fmt::Debug {
    /// Host-wide settings bulkhead relies on (IP forwarding) in the host namespace.
    fn prepare_host(&self) -> Result<()>;
    /// Creates and pins the namespace `name`, with loopback up; returns its path.
    fn create_netns(&self, name: &str) -> Result<PathBuf>;
    /// Settings bulkhead relies on inside an endpoint namespace it did not
    /// create (an adopted one; [`Kernel::create_netns`] applies them to its
    /// own): strict TCP tracking (`nf_conntrack_tcp_loose=0`).
    fn prepare_netns(&self, netns: &Path) -> Result<()>;
    /// Unpins the namespace `name` (the kernel then removes its links); absent is fine.
    fn delete_netns(&self, name: &str) -> Result<()>;
    /// Pinned namespaces whose name starts with `prefix`.
    fn netns_names(&self, prefix: &str) -> Result<Vec<String>>;
    /// Whether the pin `name` (one `netns_names` lists) holds a network
    /// namespace, not a bare file left by a crash between making the pin
    /// file and mounting the namespace on it.
    fn netns_pinned(&self, name: &str) -> Result<bool> {
        let _ = name;
        Ok(true)
    }
    /// A network's host device (a port-less bridge: this kernel has no dummy
    /// driver) holding the gateway address `gateway/prefix`.
    fn create_network_device(&self, name: &str, gateway: Option<(IpAddr, u8)>) -> Result<()>;
    /// Creates (idempotently) the switch of a non-nat network.
    fn create_switch(&self, spec: &SwitchSpec) -> Result<()>;
    /// Removes a switch made by `create_switch`; absent parts are fine.
    fn delete_switch(&self, spec: &SwitchSpec) -> Result<()>;
    /// Creates a switch port and its endpoint side, all or nothing. The
    /// switch port is left *down* (fail closed: it passes nothing, in
    /// either direction, before its tables are committed) and without its
    /// host route; [`Kernel::enable_port`] brings it into service.
    fn create_port(&self, spec: &PortSpec) -> Result<()>;
    /// Brings a port made by [`Kernel::create_port`] up and, routed, adds
    /// its host route to the endpoint address. Idempotent.
    fn enable_port(&self, spec: &PortSpec) -> Result<()>;
    /// The identity of the network namespace file at `path`; an error if it
    /// is not one.
    fn netns_id(&self, path: &Path) -> Result<NetnsId>;
    /// Whether `path` still names a network namespace (an adopted one the
    /// runtime has deleted does not).
    fn is_netns(&self, path: &Path) -> bool {
        self.netns_id(path).is_ok()
    }
    /// Where the namespace `name` is pinned (what [`Kernel::create_netns`]
    /// returns for it), so that callers never build the path themselves.
    fn netns_path(&self, name: &str) -> PathBuf {
        crate::netns::path_of(name)
    }
    /// Namespaces that must never be adopted, with the reason, as captured
    /// when the kernel was opened.
    fn protected_netns(&self) -> Vec<(NetnsId, Protected)>;
    /// Opens the namespace at `path` and checks, on the open file, that it
    /// is `expected` (a re-bound path fails here instead of redirecting the
    /// operation to another namespace).
    fn open_netns(&self, path: &Path, expected: NetnsId) -> Result<NetnsHandle>;
    /// Removes what `create_port` made outside the port link itself (proxy
    /// and hairpin neighbour entries on an uplink); absent is fine.
    fn detach_port(&self, spec: &PortSpec) -> Result<()>;
    /// Programs remote endpoints on the VXLAN device `vxlan`: an FDB entry
    /// (MAC -> host) and a permanent neighbour (IP -> MAC) for each of
    /// `add`, and removes those of `remove`.
    fn set_remotes(
        &self,
        vxlan: &str,
        add: &[RemoteEndpoint],
        remove: &[RemoteEndpoint],
    ) -> Result<()>;
    /// The remote endpoints programmed on the VXLAN device `vxlan` now
    /// (what a restarted daemon diffs against). A half-programmed entry (an
    /// FDB entry without its neighbour, or the reverse) is listed with the
    /// missing part unspecified, so it matches nothing wanted and is
    /// removed. The default lists nothing (kernels that cannot tell).
    fn remotes(&self, _vxlan: &str) -> Result<Vec<RemoteEndpoint>> {
        Ok(Vec::new())
    }
    /// Deletes a host link by name (the veth peer goes with it); absent is
    /// fine. Synchronous: a veth pair costs the kernel's RCU waits (25–40
    /// ms); an endpoint delete uses [`Kernel::retire_port`] and
    /// [`Kernel::remove_port_later`] instead.
    fn delete_link(&self, name: &str) -> Result<()>;
    /// Takes a switch port out of service at once without destroying it:
    /// what [`Kernel::detach_port`] removes goes, the port goes down (for a
    /// veth, the endpoint side loses its carrier; the kernel drops the port's
    /// routes, neighbour entries and bridge forwarding entries), its host
    /// route to the endpoint address is removed, and it joins the interface
    /// group [`RETIRED_GROUP`], whose links [`Kernel::remove_port_later`]
    /// destroys. Afterwards the endpoint's address may be given to a new
    /// port. An absent port is fine.
    fn retire_port(&self, spec: &PortSpec) -> Result<()>;
    /// Destroys the switch port `name` (retired or not; the veth peer goes
    /// with it) in the background, together with the other retired ports,
    /// once the host's rtnetlink is quiet (at most ~1 s later; a device's
    /// destruction holds `rtnl_lock`, which creates need); absent is fine.
    /// Failures can no longer be returned: they are logged.
    /// [`Kernel::settle`] and [`Kernel::settle_ports`] destroy it at once.
    fn remove_port_later(&self, name: &str);
    /// Blocks until every clean-up queued so far ([`Kernel::remove_port_later`],
    /// [`Kernel::forget_host_flows`], sockets closed in the background) has
    /// run.
    fn settle(&self);
    /// Blocks until every switch port removal queued so far
    /// ([`Kernel::remove_port_later`]) has run; the host's conntrack
    /// clean-up ([`Kernel::forget_host_flows`]) may still be queued. What
    /// a runtime's namespace waits for before it is handed back.
    fn settle_ports(&self) {
        self.settle()
    }
    /// Blocks until the host's conntrack clean-up queued so far
    /// ([`Kernel::forget_host_flows`]) has run; switch port removals may
    /// still be queued. What a create reusing a deleted endpoint's address
    /// waits for: not the ports' destruction (the kernel's RCU grace
    /// periods, ~10 ms), which has nothing to do with the address.
    fn settle_flows(&self) {
        self.settle()
    }
    /// The host namespace's own addresses `(address, scope)` in interface
    /// order (scope 0 = global): what `fib daddr type local` matches, and
    /// the order the kernel picks a masquerade source from when the
    /// outgoing port has no address. `trace` reads it; a kernel that cannot
    /// tell returns none.
    fn local_addresses(&self) -> Result<Vec<(IpAddr, u8)>> {
        Ok(Vec::new())
    }
    /// Serves DHCP to the guest on the TAP `lease.port` (a vm endpoint's
    /// switch port; see [`crate::dhcp`]), replacing a server already
    /// running there. A kernel without DHCP refuses.
    fn serve_dhcp(&self, lease: &crate::dhcp::DhcpLease) -> Result<()> {
        Err(KernelError::new(format!(
            "serve dhcp on {}: this kernel serves no DHCP",
            lease.port
        )))
    }
    /// Stops the DHCP server of `port`; none running is fine.
    fn stop_dhcp(&self, _port: &str) {}
    /// Makes the running DHCP servers exactly `leases` (reconcile); returns
    /// one error line per port that could not be served.
    fn serve_dhcp_only(&self, leases: &[crate::dhcp::DhcpLease]) -> Vec<String> {
        leases
            .iter()
            .filter_map(|l| self.serve_dhcp(l).err().map(|e| e.to_string()))
            .collect()
    }
    /// Host links whose name starts with `prefix`.
    fn link_names(&self, prefix: &str) -> Result<Vec<String>>;
    /// The addresses of the host namespace's interfaces (both families):
    /// what a port mapping may be bound to.
    fn host_addresses(&self) -> Result<Vec<IpAddr>>;
    /// Applies `changes` in one nf_tables transaction in `netns` (None = host).
    fn apply(&self, netns: Option<&Path>, changes: &[TableChange<'_>]) -> Result<()>;
    /// Tracked connections in `netns` (None = host) that involve `addr`.
    fn flows(&self, netns: Option<&Path>, addr: IpAddr) -> Result<Vec<Flow>>;
    /// Deletes the given connections; returns how many were removed.
    fn delete_flows(&self, netns: Option<&Path>, flows: &[Flow]) -> Result<usize>;
    /// The counters of `table` (as last applied) in `netns` (None = host):
    /// its counted rules and the owned elements of `sets`
    /// ([`crate::counters::read`]). Read-only.
    fn counters(
        &self,
        netns: Option<&Path>,
        table: &Table,
        sets: &[String],
    ) -> Result<crate::counters::TableCounters>;
    /// Deletes every tracked connection of `addr` in the host namespace, now
    /// or shortly after (a removed endpoint's leftovers: nothing waits on
    /// them, and walking the conntrack table costs milliseconds). Failures
    /// are logged.
    fn forget_host_flows(&self, addr: IpAddr) {
        let gone = self
            .flows(None, addr)
            .and_then(|f| self.delete_flows(None, &f));
        if let Err(e) = gone {
            tracing::warn!(%addr, error = %e, "could not delete tracked connections");
        }
    }
}
