//! Embed gochat in your own tokio program: the whole system in-process, on free ports,
//! with its data in a temporary directory; your code talks to the logic layer directly.
//!
//! Run: `cargo run --example embed` (it starts, sends one message, and shuts down).

use gochat::core::rpc::{LogicService, RoomPushRequest};
use gochat::{Config, Server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("gochat-embed-{}", std::process::id()));
    let mut config = Config::default();
    config.store.data_dir = dir.clone();
    config.api.addr = "127.0.0.1:0".parse()?;
    config.connect.ws_addr = "127.0.0.1:0".parse()?;
    config.connect.tcp_addrs = vec!["127.0.0.1:0".parse()?];
    config.api.site = false;

    let server = Server::builder().config(config).start().await?;
    if let Some(api) = server.api_addr() {
        println!("chat page: http://{api}/");
    }

    // Your program can act as any user through the logic layer, without HTTP.
    let logic = server
        .logic()
        .expect("the logic layer runs in this process");
    let token = logic.login("demo".into(), "111111".into()).await?;
    let posted = logic
        .push_room(RoomPushRequest {
            token,
            room_id: 1,
            msg: "hello from the embedding program".into(),
            ..RoomPushRequest::default()
        })
        .await?;
    println!(
        "posted to room 1 as demo (message {}, seq {:?})",
        posted.msg_id, posted.seq
    );

    server.shutdown().await;
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
