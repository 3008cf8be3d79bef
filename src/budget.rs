//! Fitting the listeners' connection limits into the process's open-file limit, so that
//! a flood of sockets is refused by a limit (with room for the rest) and never ends in
//! `Too many open files` for a login, an RPC or a Redis connection.

use crate::Layers;
use gochat_core::Config;
use gochat_core::net::Admission;

/// Descriptors kept for everything that is not a client connection: listeners, RPC links
/// between layers, Redis and etcd connections, the SQLite files, the tracing output. The
/// evicted sockets still closing are reserved for besides, per listener (see
/// `leaving_allowance`).
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// Descriptors that evicted sockets may still hold, over the listeners' limits `wanted`
/// (`gochat_core::net::Admission::max_leaving` of each in use, at most 64 each): an
/// upper bound, since a lowered limit allows no more.
fn leaving_allowance(wanted: &[usize]) -> u64 {
    let each = wanted.iter().filter(|w| **w > 0);
    each.map(|w| Admission::max_leaving(*w) as u64).sum()
}

/// Shares of the budget each listener may claim when the configured limits do not fit:
/// long connections, REST, WebSocket handshakes, the page.
const SHARES: [f64; 4] = [0.50, 0.25, 0.15, 0.10];

/// Lower the connection limits of the layers in `layers` until their sum fits in `limit`
/// descriptors, less [`RESERVED_DESCRIPTORS`] and what evicted sockets may still hold
/// (`leaving_allowance`). Each listener keeps its configured limit up to its share of the
/// budget (long connections ½, REST ¼, WebSocket handshakes 15 %, the page 10 %); what a
/// listener leaves unused goes to the long connections. Returns whether anything was
/// lowered.
pub fn fit(config: &mut Config, layers: Layers, limit: u64) -> bool {
    let api = layers.api;
    let site = layers.api && config.api.site;
    let connect = layers.connect;
    let wanted = [
        if connect {
            config.connect.max_connections
        } else {
            0
        },
        if api { config.api.max_connections } else { 0 },
        if connect {
            config.connect.max_handshakes
        } else {
            0
        },
        if site {
            config.api.site_max_connections
        } else {
            0
        },
    ];
    let reserved = RESERVED_DESCRIPTORS + leaving_allowance(&wanted);
    let budget = limit.saturating_sub(reserved).max(16) as usize;
    if wanted.iter().sum::<usize>() <= budget {
        return false;
    }
    let mut got = [0usize; 4];
    for i in 0..4 {
        got[i] = wanted[i].min(((budget as f64) * SHARES[i]) as usize);
        if wanted[i] > 0 {
            got[i] = got[i].max(1);
        }
    }
    let used: usize = got.iter().sum();
    got[0] = (got[0] + budget.saturating_sub(used)).min(wanted[0]);
    if connect {
        config.connect.max_connections = got[0];
        config.connect.max_handshakes = got[2];
    }
    if api {
        config.api.max_connections = got[1];
    }
    if site {
        config.api.site_max_connections = got[3];
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
        assert_eq!(c.connect.max_handshakes, 1024, "handshakes untouched");
        // Evicted sockets still closing: 64 for each listener, 16 for the page's 256.
        assert_eq!(leaving_allowance(&[200_000, 2048, 1024, 256]), 208);
        assert_eq!(total(&c) as u64, 20_000 - RESERVED_DESCRIPTORS - 208);
    }

    #[test]
    fn a_tiny_limit_gives_every_listener_its_share() {
        let mut c = Config::default();
        assert!(fit(&mut c, Layers::ALL, 1024));
        assert!(total(&c) as u64 <= 1024 - RESERVED_DESCRIPTORS - 208);
        assert_eq!(c.api.max_connections, 140, "a quarter of 560");
        assert_eq!(c.connect.max_handshakes, 84);
        assert_eq!(c.api.site_max_connections, 56);
        assert_eq!(c.connect.max_connections, 280);
    }

    #[test]
    fn only_the_layers_run_here_count() {
        let mut c = Config::default();
        c.connect.max_connections = 15_000;
        assert!(!fit(&mut c, Layers::API, 4096), "connect does not run here");
    }
}
