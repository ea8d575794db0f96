//! Fuzz target: the CNI plugin's network configuration reader on arbitrary
//! stdin.
//!
//! Contract: `config::decode` and `config::parse` never panic, for every
//! command; every refusal is a one-line error that maps to a CNI error code
//! of the configuration's kind (1 version, 2 unsupported field, 6 decode,
//! 7 invalid configuration); a configuration it accepts, printed back as
//! JSON, is accepted again as the same value. The first byte picks the
//! command, the rest is stdin.
//! `crates/bulkhead-cni/tests/config_prop.rs` runs the same check on stable.

#![no_main]

use bulkhead_cni::config::{decode, parse, ConfigError};
use bulkhead_cni::env::Command;
use bulkhead_cni::CniError;
use libfuzzer_sys::fuzz_target;

const COMMANDS: [Command; 6] = [
    Command::Add,
    Command::Del,
    Command::Check,
    Command::Status,
    Command::Gc,
    Command::Version,
];

fuzz_target!(|data: &[u8]| {
    let Some((&c, stdin)) = data.split_first() else {
        return;
    };
    let command = COMMANDS[usize::from(c) % COMMANDS.len()];
    let conf = match decode(stdin) {
        Ok(conf) => conf,
        Err(e) => return refused(e),
    };
    let net = match parse(&conf, command) {
        Ok(net) => net,
        Err(e) => return refused(e),
    };
    let text = serde_json::to_vec(&conf).expect("a JSON object prints");
    let again = decode(&text).and_then(|c| parse(&c, command));
    assert_eq!(again.as_ref(), Ok(&net), "{}", String::from_utf8_lossy(&text));
});

fn refused(e: ConfigError) {
    let text = e.to_string();
    assert!(!text.contains('\n'), "multi-line error: {text:?}");
    let code = CniError::from(e).code.number();
    assert!(
        matches!(code, 1 | 2 | 6 | 7),
        "configuration error with code {code}: {text}"
    );
}
