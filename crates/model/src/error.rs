//! The one error of the model: a raw value that is not a valid domain value.
//!
//! Every message names the field, quotes the value and says what is allowed,
//! on one line, so the CLI, the API and the CNI plugin can show it as is.

use std::fmt;

/// A raw input value rejected by validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidValue {
    /// The field, as the user spells it (`protocol`, `local_ports`, `Settings.Priority`).
    pub field: String,
    /// The offending value, as given.
    pub value: String,
    /// What is allowed instead.
    pub allowed: String,
}

impl InvalidValue {
    pub fn new(
        field: impl Into<String>,
        value: impl Into<String>,
        allowed: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            value: value.into(),
            allowed: allowed.into(),
        }
    }

    /// The same error reported under another field name (for nested input:
    /// `acls[2].protocol`, `Policies[0].Settings.Protocols`).
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut value: String = self.value.chars().take(80).collect();
        if self.value.chars().count() > 80 {
            value.push('…');
        }
        let value = value.replace(['\n', '\r'], " ");
        write!(f, "invalid {} {:?}: {}", self.field, value, self.allowed)
    }
}

pub type Result<T> = std::result::Result<T, InvalidValue>;
