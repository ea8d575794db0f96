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

/// One failed kernel step, in one line (`create veth bhp1234: File exists`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KernelError(pub String);

impl KernelError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, KernelError>;

/// How a switch port reaches its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortKind {
    /// A veth pair whose peer is created directly inside `netns`, named `ifname` there.
    Veth { netns: PathBuf, ifname: String },
    /// A persistent TAP device that a VMM opens (vm isolation).
    Tap,
}

/// A routed switch port (see `docs/design.md`): the host end gets proxy ARP
/// and a host route to the endpoint address; a veth peer gets the address,
/// the MAC and a default route via the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub switch_port: String,
    pub kind: PortKind,
    pub mac: [u8; 6],
    pub address: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
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
    /// Unpins the namespace `name` (the kernel then removes its links); absent is fine.
    fn delete_netns(&self, name: &str) -> Result<()>;
    /// Pinned namespaces whose name starts with `prefix`.
    fn netns_names(&self, prefix: &str) -> Result<Vec<String>>;
    /// A network's host device (a port-less bridge: this kernel has no dummy
    /// driver) holding the gateway address `gateway/prefix`.
    fn create_network_device(&self, name: &str, gateway: Option<(IpAddr, u8)>) -> Result<()>;
    /// Creates a switch port and its endpoint side, all or nothing.
    fn create_port(&self, spec: &PortSpec) -> Result<()>;
    /// Deletes a host link by name (the veth peer goes with it); absent is fine.
    fn delete_link(&self, name: &str) -> Result<()>;
    /// Host links whose name starts with `prefix`.
    fn link_names(&self, prefix: &str) -> Result<Vec<String>>;
    /// Applies `changes` in one nf_tables transaction in `netns` (None = host).
    fn apply(&self, netns: Option<&Path>, changes: &[TableChange<'_>]) -> Result<()>;
    /// Tracked connections in `netns` (None = host) that involve `addr`.
    fn flows(&self, netns: Option<&Path>, addr: IpAddr) -> Result<Vec<Flow>>;
    /// Deletes the given connections; returns how many were removed.
    fn delete_flows(&self, netns: Option<&Path>, flows: &[Flow]) -> Result<usize>;
}
