//! TEMPORARY stand-in (replaced by the mock branch at merge).
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, clap::Args, Deserialize, Serialize)]
pub struct MockArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    #[serde(skip_serializing, default = "d")]
    pub listen: std::net::SocketAddr,
    #[arg(skip)]
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
}
fn d() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}
impl Default for MockArgs {
    fn default() -> Self {
        MockArgs {
            listen: d(),
            extra: Default::default(),
        }
    }
}
impl MockArgs {
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        Ok(())
    }
    pub fn to_args(&self) -> Vec<String> {
        vec![]
    }
}
pub async fn run(
    _a: MockArgs,
    _t: tokio_util::sync::CancellationToken,
) -> Result<(), std::io::Error> {
    Ok(())
}
