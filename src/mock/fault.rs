//! What the mock's fault dice decide for one request ([`super::state::FaultDice`]), also
//! told to a [`super::Tap`].

/// What the dice decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A normal answer.
    None,
    /// HTTP `error_status`.
    Error,
    /// An in-band error (error frame mid-stream; 200 + error JSON otherwise).
    ErrorEvent,
    /// Ends early with no terminator.
    Truncate,
    /// Hangs until the client leaves or shutdown.
    Stall,
    /// 200 with a body that is neither SSE nor JSON.
    Garbage,
    /// The request body was not valid JSON (not a dice outcome; counted as a fault label).
    BadRequest,
}

impl Fault {
    /// Every label value, in index order.
    pub(crate) const ALL: [Fault; 7] = [
        Fault::None,
        Fault::Error,
        Fault::ErrorEvent,
        Fault::Truncate,
        Fault::Stall,
        Fault::Garbage,
        Fault::BadRequest,
    ];

    /// The `fault` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Error => "error",
            Fault::ErrorEvent => "error_event",
            Fault::Truncate => "truncate",
            Fault::Stall => "stall",
            Fault::Garbage => "garbage",
            Fault::BadRequest => "bad_request",
        }
    }
}
