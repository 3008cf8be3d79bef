//! [`TcpTransport`]: tarpc over TCP, bincode-encoded, length-delimited frames.

use super::Transport;
use crate::rpc::{
    ConnectRpc, ConnectRpcClient, ConnectRpcServer, ConnectService, Dial, LogicRpc, LogicRpcClient,
    LogicRpcServer, LogicService, RemoteConnect, RemoteLogic,
};
use crate::{Error, Result};
use async_trait::async_trait;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tarpc::serde_transport;
use tarpc::server::{BaseChannel, Channel, Serve};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Largest RPC frame (a delivery batch of hundreds of pushes fits many times over).
const MAX_FRAME: usize = 64 << 20;
/// How long dialing a peer may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// Layers in separate processes. `serve_*` binds a TCP listener (`bind` is `host:port`,
/// port 0 for any) and returns `advertise_host:port`, the address others dial — never
/// `0.0.0.0`. Clients are dialed lazily, shared, and dialed again after a connection breaks
/// (a peer that restarts on the same address is reached again). TCP_NODELAY on both ends.
pub struct TcpTransport {
    /// The host put in returned addresses when binding to an unspecified address.
    advertise_host: String,
    /// Owns the accept loops and connections.
    tasks: TaskTracker,
}

/// A TCP stream carrying bincode-encoded tarpc messages in length-delimited frames.
type RpcTransport<In, Out> = serde_transport::Transport<TcpStream, In, Out, Bincode<In, Out>>;

fn rpc_transport<In, Out>(stream: TcpStream) -> RpcTransport<In, Out>
where
    In: DeserializeOwned,
    Out: Serialize,
{
    let _ = stream.set_nodelay(true);
    let framed: Framed<TcpStream, LengthDelimitedCodec> = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_framed(stream);
    serde_transport::new(framed, Bincode::default())
}

/// The requests of one accepted connection, each as a future that answers it.
fn rpc_channel<S>(stream: TcpStream, serve: S) -> impl Stream<Item = impl Future<Output = ()>>
where
    S: Serve + Clone,
    S::Req: DeserializeOwned + tarpc::RequestName,
    S::Resp: Serialize,
{
    BaseChannel::with_defaults(rpc_transport(stream)).execute(serve)
}

/// Run each request of one channel as its own task until the client hangs up or the
/// service shuts down.
async fn serve_until<St, F>(requests: St, shutdown: CancellationToken, tasks: TaskTracker)
where
    St: Stream<Item = F> + Send,
    F: Future<Output = ()> + Send + 'static,
{
    let run = requests.for_each(|response| {
        tasks.spawn(response);
        async {}
    });
    tokio::select! {
        _ = run => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Dials `addr` with a timeout.
async fn dial(addr: String) -> Result<TcpStream> {
    tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(&addr))
        .await
        .map_err(|_| {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("dialing {addr} timed out"),
            ))
        })?
        .map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("dialing {addr}: {e}"),
            ))
        })
}

/// A [`Dial`] that opens a new connection to `addr` and makes a client on it with `client`.
fn dialer<C, In, Out>(addr: &str, client: fn(RpcTransport<In, Out>) -> C) -> Dial<C>
where
    C: Send + 'static,
    In: DeserializeOwned + Send + 'static,
    Out: Serialize + Send + 'static,
{
    let target = addr.to_owned();
    Box::new(move || {
        let target = target.clone();
        Box::pin(async move { Ok(client(rpc_transport(dial(target).await?))) })
    })
}

impl TcpTransport {
    /// A transport advertising `advertise_host` (e.g. `127.0.0.1` or the host's name).
    pub fn new(advertise_host: impl Into<String>) -> Self {
        Self {
            advertise_host: advertise_host.into(),
            tasks: TaskTracker::new(),
        }
    }

    async fn listen(&self, bind: &str) -> Result<(TcpListener, String)> {
        let addr: SocketAddr = bind.parse().map_err(|_| Error::BadAddress(bind.into()))?;
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("binding {addr}: {e}"),
            ))
        })?;
        let local = listener.local_addr()?;
        let host = if local.ip().is_unspecified() {
            self.advertise_host.clone()
        } else {
            local.ip().to_string()
        };
        Ok((listener, format!("{host}:{}", local.port())))
    }

    /// Listen on `bind` and serve every connection accepted as the request stream `channel`
    /// makes of it, until `shutdown`; returns the address to register.
    async fn serve<F, St, Fut>(
        &self,
        bind: &str,
        shutdown: CancellationToken,
        channel: F,
    ) -> Result<String>
    where
        F: Fn(TcpStream) -> St + Send + 'static,
        St: Stream<Item = Fut> + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (listener, addr) = self.listen(bind).await?;
        let tasks = self.tasks.clone();
        let stop = shutdown.clone();
        self.tasks.spawn(crate::net::accept_loop(
            listener,
            None,
            shutdown,
            move |stream, _, _| {
                tasks.spawn(serve_until(channel(stream), stop.clone(), tasks.clone()));
            },
        ));
        Ok(addr)
    }
}

#[async_trait]
impl Transport for TcpTransport {
    async fn serve_logic(
        &self,
        bind: &str,
        service: Arc<dyn LogicService>,
        shutdown: CancellationToken,
    ) -> Result<String> {
        let serve = move |s| rpc_channel(s, LogicRpcServer(service.clone()).serve());
        self.serve(bind, shutdown, serve).await
    }

    async fn serve_connect(
        &self,
        bind: &str,
        service: Arc<dyn ConnectService>,
        shutdown: CancellationToken,
    ) -> Result<String> {
        let serve = move |s| rpc_channel(s, ConnectRpcServer(service.clone()).serve());
        self.serve(bind, shutdown, serve).await
    }

    async fn logic(&self, addr: &str) -> Result<Arc<dyn LogicService>> {
        let dial = dialer(addr, |t| LogicRpcClient::new(Default::default(), t).spawn());
        Ok(Arc::new(RemoteLogic::new(addr, dial)))
    }

    async fn connect(&self, addr: &str) -> Result<Arc<dyn ConnectService>> {
        let dial = dialer(addr, |t| {
            ConnectRpcClient::new(Default::default(), t).spawn()
        });
        Ok(Arc::new(RemoteConnect::new(addr, dial)))
    }

    async fn close(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Delivery, PushKind, Target};
    use crate::rpc::Fault;
    use std::sync::Mutex;

    /// A connect service that records what it is given.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<i64>>);

    #[async_trait]
    impl ConnectService for Recorder {
        async fn deliver(&self, deliveries: Vec<Delivery>) -> Result<(), Fault> {
            self.0
                .lock()
                .unwrap()
                .extend(deliveries.iter().map(|d| d.id));
            Ok(())
        }
    }

    fn batch(ids: std::ops::Range<i64>) -> Vec<Delivery> {
        ids.map(|id| Delivery::new(id, Target::Room(1), PushKind::Message, vec![b'x'; 300]))
            .collect()
    }

    #[tokio::test]
    async fn calls_cross_a_real_socket_and_survive_a_peer_restart() {
        let t = TcpTransport::new("127.0.0.1");
        let first = Arc::new(Recorder::default());
        let stop1 = CancellationToken::new();
        let addr = t
            .serve_connect("127.0.0.1:0", first.clone(), stop1.clone())
            .await
            .unwrap();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let client = t.connect(&addr).await.unwrap();
        client.deliver(batch(0..500)).await.unwrap();
        assert_eq!(first.0.lock().unwrap().len(), 500);

        // The peer goes away: calls fail as unavailable, they do not hang.
        stop1.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut failed = false;
        for _ in 0..5 {
            if matches!(
                client.deliver(batch(0..1)).await,
                Err(Fault::Unavailable(_))
            ) {
                failed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(failed, "calls to a stopped peer must fail");

        // It comes back on the same address: the same client reaches it again.
        let second = Arc::new(Recorder::default());
        let stop2 = CancellationToken::new();
        t.serve_connect(&addr, second.clone(), stop2.clone())
            .await
            .unwrap();
        let mut ok = false;
        for _ in 0..20 {
            if client.deliver(batch(7..9)).await.is_ok() {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ok, "client did not reconnect");
        assert_eq!(*second.0.lock().unwrap(), [7, 8]);
        stop2.cancel();
    }

    #[tokio::test]
    async fn unspecified_binds_advertise_a_dialable_host() {
        let t = TcpTransport::new("127.0.0.1");
        let stop = CancellationToken::new();
        let addr = t
            .serve_connect("0.0.0.0:0", Arc::new(Recorder::default()), stop.clone())
            .await
            .unwrap();
        assert!(
            addr.starts_with("127.0.0.1:") && !addr.contains("0.0.0.0"),
            "{addr}"
        );
        t.connect(&addr)
            .await
            .unwrap()
            .deliver(batch(0..1))
            .await
            .unwrap();
        stop.cancel();
    }
}
