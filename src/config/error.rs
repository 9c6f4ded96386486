//! The one error type of configuration validation.

/// A configuration problem, naming the field, the offending value and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A field holds a value that cannot be used.
    #[error("invalid config: {field} = {value:?}: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    /// The sources could not be read or parsed (unknown keys, syntax, unreadable file).
    #[error("invalid config: {0}")]
    Load(String),
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
