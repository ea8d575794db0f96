//! `bulkhead import FILE.json`: the request's HCN v2 document handed to
//! [`Engine::import_hcn`] (all or nothing, see `bulkhead_engine`'s
//! `import.rs`), and its result as the API's.

use bulkhead_api::ImportResult;
use bulkhead_engine::{Engine, EngineError};

pub fn import(engine: &Engine, document: serde_json::Value) -> Result<ImportResult, EngineError> {
    let bytes = serde_json::to_vec(&document).map_err(|e| EngineError::Conflict(e.to_string()))?;
    let made = engine.import_hcn(&bytes)?;
    Ok(ImportResult {
        networks: made.networks,
        namespaces: made.namespaces,
        endpoints: made.endpoints,
        acls: u32::try_from(made.acls).unwrap_or(u32::MAX),
    })
}
