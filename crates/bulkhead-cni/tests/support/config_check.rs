//! The check of the CNI configuration reader shared by the stable property
//! test (`tests/config_prop.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/cni_config.rs`, which includes this file by path):
//! `decode` and `parse` never panic; every refusal reaches the runtime as
//! one line with a configuration error code (1 version, 2 unsupported field, 6 decode, 7
//! invalid configuration); an accepted configuration, printed back as JSON,
//! is accepted again as the same value.

use bulkhead_cni::config::{decode, parse, ConfigError};
use bulkhead_cni::env::Command;
use bulkhead_cni::CniError;

/// A refusal as the runtime sees it: the CNI error (`CniError`), whose
/// details are one line even where the `ConfigError` text is not (an
/// unknown key may hold newlines; `CniError::new` folds them).
fn refused(e: ConfigError) {
    let wire = CniError::from(e);
    let text = wire.to_string();
    assert!(!text.contains('\n'), "multi-line error: {text:?}");
    let code = wire.code.number();
    assert!(
        matches!(code, 1 | 2 | 6 | 7),
        "configuration error with code {code}: {text}"
    );
}

/// The check shared with the fuzz target; whether `stdin` was accepted.
pub fn check(command: Command, stdin: &[u8]) -> bool {
    let conf = match decode(stdin) {
        Ok(conf) => conf,
        Err(e) => {
            refused(e);
            return false;
        }
    };
    let net = match parse(&conf, command) {
        Ok(net) => net,
        Err(e) => {
            refused(e);
            return false;
        }
    };
    let text = serde_json::to_vec(&conf).expect("a JSON object prints");
    let again = decode(&text).and_then(|c| parse(&c, command));
    assert_eq!(
        again.as_ref(),
        Ok(&net),
        "{}",
        String::from_utf8_lossy(&text)
    );
    true
}
