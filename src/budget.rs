//! Fitting the listeners' connection limits into the process's open-file limit, so that
//! a flood of sockets is refused by a limit (with room for the rest) and never ends in
//! `Too many open files` for a login, an RPC or a Redis connection.

use crate::Layers;
use gochat_core::Config;

/// Descriptors kept for everything that is not a client connection: listeners, RPC links
/// between layers, Redis and etcd connections, the SQLite files, the tracing output.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// Lower the connection limits of the layers in `layers` until their sum fits in `limit`
/// descriptors (less [`RESERVED_DESCRIPTORS`]). The long connections give way first; if the
/// HTTP limits alone do not fit, every limit shrinks in proportion. Returns whether
/// anything was lowered.
pub fn fit(config: &mut Config, layers: Layers, limit: u64) -> bool {
    let budget = limit.saturating_sub(RESERVED_DESCRIPTORS).max(16) as usize;
    let mut http = 0;
    if layers.api {
        http += config.api.max_connections;
        if config.api.site {
            http += config.api.site_max_connections;
        }
    }
    let long = if layers.connect {
        http += config.connect.max_handshakes;
        config.connect.max_connections
    } else {
        0
    };
    if http + long <= budget {
        return false;
    }
    if http * 4 <= budget * 3 {
        // The HTTP listeners fit in three quarters: the long connections get the rest.
        config.connect.max_connections = budget - http;
    } else {
        let scale = |n: usize| (n as u128 * budget as u128 / (http + long) as u128).max(1) as usize;
        config.api.max_connections = scale(config.api.max_connections);
        config.api.site_max_connections = scale(config.api.site_max_connections);
        config.connect.max_handshakes = scale(config.connect.max_handshakes);
        config.connect.max_connections = scale(config.connect.max_connections);
    }
    tracing::warn!(
        "open-file limit {limit}: connection limits lowered to fit — long connections {}, \
         WebSocket handshakes {}, REST {}, page {} (raise the limit to allow more)",
        config.connect.max_connections,
        config.connect.max_handshakes,
        config.api.max_connections,
        config.api.site_max_connections
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(c: &Config) -> usize {
        c.connect.max_connections
            + c.connect.max_handshakes
            + c.api.max_connections
            + c.api.site_max_connections
    }

    #[test]
    fn a_large_limit_changes_nothing() {
        let mut c = Config::default();
        c.connect.max_connections = 10_000;
        assert!(!fit(&mut c, Layers::ALL, 1 << 20));
        assert_eq!(c.connect.max_connections, 10_000);
    }

    #[test]
    fn long_connections_give_way_first() {
        let mut c = Config::default();
        assert!(fit(&mut c, Layers::ALL, 20_000));
        assert_eq!(c.api.max_connections, 2048, "REST untouched");
        assert_eq!(total(&c) as u64, 20_000 - RESERVED_DESCRIPTORS);
    }

    #[test]
    fn a_tiny_limit_shrinks_everything_in_proportion() {
        let mut c = Config::default();
        assert!(fit(&mut c, Layers::ALL, 1024));
        assert!(
            total(&c) as u64 <= 1024 - RESERVED_DESCRIPTORS,
            "{}",
            total(&c)
        );
        assert!(c.api.max_connections >= 1 && c.connect.max_connections >= 1);
    }

    #[test]
    fn only_the_layers_run_here_count() {
        let mut c = Config::default();
        c.connect.max_connections = 15_000;
        assert!(!fit(&mut c, Layers::API, 4096), "connect does not run here");
    }
}
