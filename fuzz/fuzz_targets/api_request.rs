//! Fuzz target: the API's route and body decoder on arbitrary input.
//!
//! Contract: `bulkhead_api::decode_request(method, path, body)` never panics,
//! and every refusal is a one-line error. The first byte picks the method
//! (the five the server sees most, or an arbitrary one), the bytes up to the
//! first NUL are the path, the rest is the body.
//! `crates/api/tests/decode_prop.rs` runs the same check on stable.

#![no_main]

use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 5] = ["GET", "POST", "DELETE", "PUT", "get"];

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(m) % METHODS.len()];
    let (path, body) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let path = String::from_utf8_lossy(path);
    // Paths the router knows, so the body decoders are reached often.
    let path = match path.strip_prefix('#') {
        Some(tail) => format!("/v1/{tail}"),
        None => path.into_owned(),
    };
    if let Err(e) = bulkhead_api::decode_request(method, &path, body) {
        assert!(!e.message.contains('\n'), "multi-line error: {e:?}");
    }
});
