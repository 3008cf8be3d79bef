//! Opening a TCP connection, optionally from a chosen local address (the load tool spreads
//! its connections over 127.0.0.x to have more than one address's ports).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::net::{TcpSocket, TcpStream};

/// Local ports handed out to connections from a chosen address, in turn.
const FIRST_PORT: u32 = 10_000;
const PORTS: u32 = 65_536 - FIRST_PORT;
/// Ports tried before giving up (each one in use by another connection from the address).
const ATTEMPTS: usize = 256;

static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// Connect to `addr`, from `source` if given. From a chosen address the port is picked here,
/// not by the kernel: `bind(ip, 0)` searches the whole ephemeral range for a port free on
/// that address, and with tens of thousands of connections from one address that search
/// kept both cores in the kernel for half a minute of a connect storm.
pub(super) async fn dial(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(addr).await;
    };
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let port = FIRST_PORT + NEXT_PORT.fetch_add(1, Ordering::Relaxed) % PORTS;
        let socket = if ip.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // A port whose last connection is in TIME_WAIT may be reused.
        socket.set_reuseaddr(true)?;
        let taken = match socket.bind(SocketAddr::new(ip, port as u16)) {
            Ok(()) => match socket.connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => e,
            },
            Err(e) => e,
        };
        if !matches!(
            taken.kind(),
            std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable
        ) {
            return Err(taken);
        }
        last = Some(taken);
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no local port free")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn connections_from_a_chosen_address_come_from_it_on_ports_of_their_own() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        let source: IpAddr = "127.0.0.7".parse().unwrap();
        let mut held = Vec::new();
        let mut ports = std::collections::HashSet::new();
        for _ in 0..300 {
            held.push(dial(server, Some(source)).await.unwrap());
            let (_, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.ip(), source);
            assert!(ports.insert(peer.port()), "port {} twice", peer.port());
        }
    }
}
