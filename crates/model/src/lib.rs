//! bulkhead's domain model: validated, typed values for everything the user
//! can say, and nothing else.
//!
//! Raw input (CLI flags, API JSON, HCN documents, CNI configuration) becomes
//! these types only through `parse`/`validate` functions whose errors name
//! the field, quote the value and say what is allowed ([`InvalidValue`]).
//! The crate does no I/O and has no unsafe code; a test in `tests/purity.rs`
//! keeps it that way.

#![forbid(unsafe_code)]

pub mod acl;
pub mod addr;
pub mod endpoint;
pub mod error;
pub mod hcn;
pub mod name;
pub mod namespace;
pub mod network;
pub mod port;
pub mod protocol;
pub mod raw;
pub mod tap;
pub mod trace;

pub use acl::{AclMode, AclRule, AclRuleSpec, Action, Direction, RuleId, RuleType};
pub use addr::{AddressList, Cidr, IfAddr, MacAddress};
pub use endpoint::{Endpoint, EndpointRequest, EndpointSpec, PortMapping};
pub use error::InvalidValue;
pub use name::{Id, Name};
pub use namespace::{Isolation, Namespace, NamespaceSpec};
pub use network::{AclProfile, Driver, IfName, Network, NetworkSpec};
pub use port::{PortList, PortRange};
pub use protocol::Protocol;
pub use tap::TapOptions;
pub use trace::TraceSpec;
