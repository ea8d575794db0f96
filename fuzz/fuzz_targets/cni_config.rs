//! Fuzz target: the CNI plugin's network configuration reader on arbitrary
//! stdin.
//!
//! Contract: `config::decode` and `config::parse` never panic, for every
//! command; every refusal is a one-line error that maps to a CNI error code
//! of the configuration's kind (1 version, 2 unsupported field, 6 decode,
//! 7 invalid configuration); a configuration it accepts, printed back as
//! JSON, is accepted again as the same value. The first byte picks the
//! command, the rest is stdin.
//! The check is `crates/bulkhead-cni/tests/support/config_check.rs`, which
//! `crates/bulkhead-cni/tests/config_prop.rs` runs on stable.

#![no_main]

#[path = "../../crates/bulkhead-cni/tests/support/config_check.rs"]
mod config_check;

use bulkhead_cni::env::Command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&c, stdin)) = data.split_first() else {
        return;
    };
    config_check::check(Command::ALL[usize::from(c) % Command::ALL.len()], stdin);
});
