//! The stages of the time a proxy adds: the `stage` label of `soakd_proxy_added_seconds`.
//!
//! [`AddedStage::ALL`] is the one list of stages: the tracker's metric handles and HDR
//! histograms, the merged and per-scenario percentiles of `/status` and the summary, and the
//! creep measures (`added_<stage>`) are all built by iterating it, so a new stage is one new
//! variant here (and its rule in [`super::measure`]).

use crate::metrics::label_enum;

label_enum! {
    /// A stage of the time the proxy adds (`stage` label).
    AddedStage {
        Request => "request",
        FirstToken => "first_token",
        Chunk => "chunk",
    }
}

impl AddedStage {
    /// How the summary names it.
    pub fn text(self) -> &'static str {
        match self {
            AddedStage::Request => "request",
            AddedStage::FirstToken => "first token",
            AddedStage::Chunk => "chunk",
        }
    }

    /// Whether only streamed answers have this stage (a non-stream answer has no first token
    /// and no chunks of its own).
    pub fn streams_only(self) -> bool {
        match self {
            AddedStage::Request => false,
            AddedStage::FirstToken | AddedStage::Chunk => true,
        }
    }

    /// The creep measure of this stage: `added_<stage>`.
    pub fn measure(self) -> String {
        format!("added_{}", self.as_str())
    }
}
