//! `bulkhead demo`: the guided tour (spec §8), run in-process.
//!
//! Placeholder: this build has no in-process service, so the tour reports
//! that it is unavailable. The lead replaces this module with the real tour.

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// This build has no demo.
    #[error("demo is not available in this build")]
    Unavailable,
}

/// Runs the tour.
pub fn run() -> Result<(), DemoError> {
    Err(DemoError::Unavailable)
}
