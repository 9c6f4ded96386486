//! The closed outcome sets of a request and of a stream (the `outcome` label of
//! `soakd_requests_total` and the `result` label of `soakd_streams_finished_total`).

use crate::metrics::label_enum;

label_enum! {
    /// How a request ended (`outcome` label).
    Outcome {
        Ok => "ok",
        Http4xx => "http_4xx",
        Http429 => "http_429",
        Http5xx => "http_5xx",
        Timeout => "timeout",
        ConnectError => "connect_error",
        StreamTruncated => "stream_truncated",
        StreamErrorEvent => "stream_error_event",
        ProtocolError => "protocol_error",
        Cancelled => "cancelled",
        Aborted => "aborted",
    }
}

impl Outcome {
    /// The `result` label of the duration histogram. A client-side cancellation (the soak's
    /// cancel injection) is the workload doing what it was told, so it counts as ok; a request
    /// soakd stopped at the end of its grace period (`aborted`) never finished, so it does not.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Cancelled)
    }

    /// Whether the request counts as an error (`errors`, `error_ratio`, the error-ratio rule):
    /// neither a success nor `aborted`, which soakd's own stop causes and which is counted on
    /// its own (`[thresholds] max_aborted`).
    pub fn is_error(self) -> bool {
        !self.is_success() && self != Outcome::Aborted
    }
}

label_enum! {
    /// How a stream ended (`result` label of `soakd_streams_finished_total`).
    StreamResult {
        Completed => "completed",
        Truncated => "truncated",
        ErrorEvent => "error_event",
        Cancelled => "cancelled",
        Timeout => "timeout",
        Aborted => "aborted",
    }
}

impl StreamResult {
    /// The result of an opened stream whose request ended with `o`. Every failure that is
    /// not an error event, a cancel, a timeout or an abort left the stream without its
    /// terminator.
    pub fn of(o: Outcome) -> StreamResult {
        match o {
            Outcome::Ok => StreamResult::Completed,
            Outcome::StreamErrorEvent => StreamResult::ErrorEvent,
            Outcome::Cancelled => StreamResult::Cancelled,
            Outcome::Timeout => StreamResult::Timeout,
            Outcome::Aborted => StreamResult::Aborted,
            _ => StreamResult::Truncated,
        }
    }
}
