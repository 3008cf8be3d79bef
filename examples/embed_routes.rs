//! Embed gochat in a tokio program that has HTTP routes of its own: gochat serves its API,
//! page, WebSocket and TCP on its usual ports, and this program serves `/status` and
//! `/announce` on another, using gochat's library API directly.
//!
//! ```sh
//! cargo run --example embed_routes                 # app on 127.0.0.1:9090
//! curl 127.0.0.1:9090/status                       # {"connections":0,…}
//! curl -X POST 127.0.0.1:9090/announce -d 'hello'  # posted to room 1 as admin
//! ```
//!
//! Flags: `--app ADDR`, `--api ADDR`, `--ws ADDR`, `--tcp ADDR`, `--data-dir DIR`.

use bytes::Bytes;
use clap::Parser;
use gochat::core::rpc::{LogicService, RoomPushRequest};
use gochat::{Config, Server};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Parser)]
struct Args {
    /// This program's own HTTP address.
    #[arg(long, default_value = "127.0.0.1:9090")]
    app: SocketAddr,
    /// gochat's REST API and page.
    #[arg(long, default_value = "127.0.0.1:7070")]
    api: SocketAddr,
    /// gochat's WebSocket.
    #[arg(long, default_value = "127.0.0.1:7000")]
    ws: SocketAddr,
    /// gochat's raw TCP.
    #[arg(long, default_value = "127.0.0.1:7001")]
    tcp: SocketAddr,
    /// Where gochat keeps its users.
    #[arg(long, default_value = "data")]
    data_dir: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut config = Config::default();
    config.api.addr = a.api;
    config.api.site = false;
    config.connect.ws_addr = a.ws;
    config.connect.tcp_addrs = vec![a.tcp];
    config.store.data_dir = a.data_dir;
    let server = Arc::new(Server::builder().config(config).start().await?);

    let listener = tokio::net::TcpListener::bind(a.app).await?;
    println!(
        "app: http://{}/status   gochat page: http://{}/",
        listener.local_addr()?,
        a.api
    );
    let app = {
        let server = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| route(req, server.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        })
    };
    tokio::signal::ctrl_c().await.ok();
    app.abort();
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
    Ok(())
}

async fn route(
    req: Request<hyper::body::Incoming>,
    server: Arc<Server>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        Ok(r)
    };
    match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/status") => {
            let connections = server.connect().map_or(0, |c| c.open_connections());
            reply(
                StatusCode::OK,
                format!(
                    "{{\"connections\":{connections},\"api\":\"{}\"}}\n",
                    server.api_addr().map(|a| a.to_string()).unwrap_or_default()
                ),
            )
        }
        (Method::POST, "/announce") => {
            let text = match req.into_body().collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_string(),
                Err(_) => return reply(StatusCode::BAD_REQUEST, "unreadable body\n".into()),
            };
            let Some(logic) = server.logic() else {
                return reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no logic layer here\n".into(),
                );
            };
            // The program acts as a user through the logic layer: no HTTP round trip.
            let outcome = match logic.login("admin".into(), "111111".into()).await {
                Ok(token) => {
                    logic
                        .push_room(RoomPushRequest {
                            token,
                            room_id: 1,
                            msg: text,
                            ..RoomPushRequest::default()
                        })
                        .await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(_) => reply(StatusCode::OK, "announced\n".into()),
                Err(e) => reply(StatusCode::BAD_REQUEST, format!("{e}\n")),
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "try GET /status or POST /announce\n".into(),
        ),
    }
}
