//! Configuration: raw structs mirroring the file, validated into typed settings.

pub mod error;
pub use error::ConfigError;
