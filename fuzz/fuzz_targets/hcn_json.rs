//! Fuzz target: the HCN v2 document decoder on arbitrary bytes.
//!
//! Contract: `hcn::parse_document` never panics; a document it accepts is
//! emitted (`emit_document_json`) as JSON that it accepts again, with the same
//! networks, namespaces and endpoints and nothing ignored.
//! `crates/model/tests/parsers_prop.rs` runs the same check on stable.

#![no_main]

use bulkhead_model::hcn::{emit_document_json, parse_document};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = parse_document(data) else {
        return;
    };
    let json = emit_document_json(&doc);
    let again = match parse_document(json.as_bytes()) {
        Ok(again) => again,
        Err(e) => panic!("emitted document refused: {e}\n{json}"),
    };
    assert!(
        doc.same_objects(&again),
        "round trip changed the document\n{json}"
    );
    assert!(again.ignored.is_empty(), "{:?}", again.ignored);
});
