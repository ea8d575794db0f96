//! Fuzz target: the ACL and publish parsers on arbitrary text.
//!
//! Contract: `AddressList::parse`, `PortList::parse`, `Protocol::parse` and
//! `PortMapping::parse` never panic, and every value they accept prints
//! (`Display`, and `Protocol::to_hcn`) to text that parses to the same value.
//! `crates/model/tests/parsers_prop.rs` runs the same checks on stable.

#![no_main]

use bulkhead_model::{AddressList, PortList, PortMapping, Protocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(l) = AddressList::parse("f", &s) {
        assert_eq!(AddressList::parse("f", &l.to_string()).as_ref(), Ok(&l));
    }
    if let Ok(l) = PortList::parse("f", &s) {
        assert_eq!(PortList::parse("f", &l.to_string()).as_ref(), Ok(&l));
    }
    if let Ok(p) = Protocol::parse("f", &s) {
        assert_eq!(Protocol::parse("f", &p.to_string()), Ok(p));
        assert_eq!(Protocol::parse("f", &p.to_hcn()), Ok(p));
    }
    if let Ok(m) = PortMapping::parse("f", &s) {
        assert_eq!(PortMapping::parse("f", &m.to_string()), Ok(m));
    }
});
