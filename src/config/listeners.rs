//! soakd's own listeners must not share an address: two of them on one port is a config
//! error (exit 78, naming both keys) found before anything binds, not a bind failure at run
//! time.
//!
//! Two addresses clash when their ports are equal and not 0 (port 0 asks the OS for a free
//! port, so any number of listeners may use it) and either their IPs are equal or one of them
//! is unspecified (`0.0.0.0`, `[::]`): a wildcard listener holds the port on every address
//! (on Linux a dual-stack `[::]` holds it for IPv4 too), so a second bind on the same port
//! fails whatever its IP.

use std::net::SocketAddr;

use crate::units::ConfigError;

/// Whether listeners on `a` and `b` would take the same port.
pub fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Fails on the first pair of configured listeners (key, address) that [`clash`].
pub fn check_distinct(listeners: &[(&str, Option<SocketAddr>)]) -> Result<(), ConfigError> {
    let set: Vec<(&str, SocketAddr)> = listeners
        .iter()
        .filter_map(|(k, a)| a.map(|a| (*k, a)))
        .collect();
    for (i, (ka, a)) in set.iter().enumerate() {
        if let Some((kb, b)) = set[i + 1..].iter().find(|(_, b)| clash(*a, *b)) {
            return Err(ConfigError::invalid(
                *kb,
                b,
                format!(
                    "the same port as {ka} = \"{a}\": soakd's own listeners need an address \
                     each"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn same_port_clashes_on_one_ip_or_a_wildcard_never_on_port_zero() {
        assert!(clash(a("127.0.0.1:9477"), a("127.0.0.1:9477")));
        assert!(clash(a("0.0.0.0:9477"), a("127.0.0.1:9477")));
        assert!(clash(a("127.0.0.1:9477"), a("[::]:9477")));
        assert!(!clash(a("127.0.0.1:9477"), a("127.0.0.2:9477")));
        assert!(!clash(a("127.0.0.1:9477"), a("127.0.0.1:9600")));
        assert!(!clash(a("127.0.0.1:0"), a("127.0.0.1:0")));
        assert!(!clash(a("0.0.0.0:0"), a("127.0.0.1:0")));
    }

    #[test]
    fn the_error_names_both_keys_and_the_address() {
        let e = check_distinct(&[
            ("admin.listen", Some(a("127.0.0.1:9477"))),
            ("upstream.listen", Some(a("127.0.0.1:9477"))),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "invalid config: upstream.listen = \"127.0.0.1:9477\": the same port as \
             admin.listen = \"127.0.0.1:9477\": soakd's own listeners need an address each"
        );
        assert!(check_distinct(&[
            ("admin.listen", Some(a("127.0.0.1:9477"))),
            ("upstream.listen", None),
        ])
        .is_ok());
        assert!(check_distinct(&[
            ("admin.listen", Some(a("127.0.0.1:0"))),
            ("upstream.listen", Some(a("127.0.0.1:0"))),
        ])
        .is_ok());
    }
}
