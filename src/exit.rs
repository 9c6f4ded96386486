//! Process exit codes of every `soakd` command, in one place.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | pass: every threshold passed (`run`), no regression (`compare`), no leak (`analyze`) |
//! | 1 | fail: a threshold or leak verdict failed, a regression, a leak |
//! | 2 | runtime failure: a port in use, the mock did not start, input that cannot be read |
//! | 78 | bad config or a bad command-line flag (`EX_CONFIG` from sysexits.h), reported before any port is bound |
//! | 130 | quit at once by a second SIGTERM/SIGINT |

/// Success.
pub const PASS: u8 = 0;
/// A threshold, a leak verdict or a comparison failed.
pub const FAIL: u8 = 1;
/// soakd could not do its job (I/O, bind, a child that did not start, unreadable input).
pub const RUNTIME: u8 = 2;
/// The configuration is invalid.
pub const CONFIG: u8 = 78;
/// A second signal: quit at once.
pub const INTERRUPTED: u8 = 130;
