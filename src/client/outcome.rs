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
    }
}

impl Outcome {
    /// The `result` label of the duration histogram. A client-side cancellation is the
    /// workload doing what it was told, so it counts as ok.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Cancelled)
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
    }
}

impl StreamResult {
    /// The result of an opened stream whose request ended with `o`. Every failure that is
    /// not an error event, a cancel or a timeout left the stream without its terminator.
    pub fn of(o: Outcome) -> StreamResult {
        match o {
            Outcome::Ok => StreamResult::Completed,
            Outcome::StreamErrorEvent => StreamResult::ErrorEvent,
            Outcome::Cancelled => StreamResult::Cancelled,
            Outcome::Timeout => StreamResult::Timeout,
            _ => StreamResult::Truncated,
        }
    }
}
