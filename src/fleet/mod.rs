//! `soakd verdict`: one verdict for a sharded soak, from the Prometheus that scraped its
//! shards.
//!
//! A sharded run (`[run] shards = N`, one `soakd run` per `shard_index`) judges each shard's
//! 1/N of the traffic on its own. This command judges the fleet: it waits (up to `--wait`)
//! until every shard lingers, reads the counters from Prometheus and the shards' HDR
//! histograms from their admin ports, and evaluates the same `[thresholds]` as `soakd run`
//! over the merged run.
//!
//! - [`discover`]: which shards exist and which linger (`soakd_run_info{run_id, shard}` and
//!   `soakd_run_state{state}`, joined on `instance`);
//! - [`collect`]: the counters summed per shard over the run's own span (from the earliest
//!   `soakd_run_start_time_seconds`), and each shard's `/histograms` and `/status`;
//! - [`judge`]: the merge (counters summed, histograms added exactly, one leak verdict per
//!   watched process, growth per request against the fleet's requests), the verdict inputs
//!   and the shards that contributed most to a failure;
//! - [`summary`]: the fleet summary, text and JSON (the run summary's layout plus `shards[]`);
//! - [`cli`]: the command, its arguments (exit 78 when bad), the wait and the exit code.
//!
//! # Exit codes
//! 0 every threshold passed; 1 a threshold failed (named, with the shards that contributed
//! most); 2 Prometheus unreachable or refusing a query, a shard missing after `--wait`
//! (naming the missing indices), or a lingering shard whose admin port cannot be read;
//! 78 a bad config or argument.

pub mod cli;
pub mod collect;
pub mod discover;
pub mod judge;
pub mod summary;

use crate::analyze::InputError;

/// What stops the verdict short of judging (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// Prometheus unreachable, refusing a query, or answering something unreadable.
    #[error(transparent)]
    Prometheus(#[from] InputError),
    /// Shards that did not linger within `--wait`.
    #[error(
        "{} of {total} shards not lingering after --wait {wait}: missing shard{} {} ({})",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        missing.iter().map(|(i, _)| i.to_string()).collect::<Vec<_>>().join(", "),
        missing.iter().map(|(i, why)| format!("shard {i}: {why}")).collect::<Vec<_>>().join("; ")
    )]
    Missing {
        /// Shards in the run.
        total: u32,
        /// The wait, as given.
        wait: String,
        /// Each missing index with what Prometheus says of it.
        missing: Vec<(u32, String)>,
    },
    /// A lingering shard whose admin port cannot be read.
    #[error("shard {shard} at {instance}: {reason}")]
    Shard {
        /// Its index.
        shard: u32,
        /// Its `instance`.
        instance: String,
        /// What went wrong.
        reason: String,
    },
}
