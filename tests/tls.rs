//! `[tls]`: the api answers HTTPS and the WebSocket listener WSS with a certificate made in
//! the test (rcgen); a Rust client (rustls) registers over HTTPS and chats over WSS; a plain
//! HTTP client on the TLS port gets nowhere and everyone else is still served.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures::{SinkExt, StreamExt};
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message;

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files in `dir`;
/// returns a connector that trusts it.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, TlsConnector) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(made.cert.der().to_vec()))
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (cert, key, TlsConnector::from(Arc::new(config)))
}

async fn tls(
    connector: &TlsConnector,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    connector.connect(name, tcp).await.unwrap()
}

/// One HTTPS POST; the reply's body.
async fn https_post(connector: &TlsConnector, addr: SocketAddr, path: &str, body: &str) -> String {
    let mut s = tls(connector, addr).await;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await; // a close_notify-less close is fine here
    let text = String::from_utf8(raw).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_with_a_certificate_made_here() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, connector) = certificate(dir.path());
    let s = start_with(|c| {
        c.tls.cert_file = Some(cert.clone());
        c.tls.key_file = Some(key.clone());
    })
    .await;

    let reply = https_post(
        &connector,
        s.api(),
        "/user/register",
        r#"{"userName":"tls-alice","passWord":"over-tls-1"}"#,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["code"], 0, "{reply}");
    let token = v["data"].as_str().unwrap().to_owned();

    let stream = tls(&connector, s.ws()).await;
    let url = format!("wss://{}/ws", s.ws());
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    ws.send(Message::text(format!(
        r#"{{"authToken":"{token}","roomId":1}}"#
    )))
    .await
    .unwrap();
    let push = format!(r#"{{"msg":"secret hello","roomId":1,"authToken":"{token}"}}"#);
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            // Post until the connection is admitted and the message comes back over wss.
            let r = https_post(&connector, s.api(), "/push/pushRoom", &push).await;
            assert!(r.contains(r#""code":0"#), "{r}");
            let wait = std::time::Duration::from_millis(300);
            while let Ok(Some(Ok(m))) = tokio::time::timeout(wait, ws.next()).await {
                if let Message::Text(t) = m
                    && t.contains("secret hello")
                {
                    return t.to_string();
                }
            }
        }
    })
    .await
    .expect("the message never arrived over wss");
    assert!(got.contains(r#""fromUserName":"tls-alice""#), "{got}");

    // Plain HTTP on the TLS port: no answer in HTTP; the server keeps serving.
    let plain = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        request(s.api(), "GET", "/healthz", b"", ""),
    );
    let outcome = tokio::spawn(plain).await;
    assert!(
        outcome.is_err() || outcome.unwrap().is_err(),
        "plain HTTP was answered"
    );
    let again = https_post(
        &connector,
        s.api(),
        "/user/checkAuth",
        &format!(r#"{{"authToken":"{token}"}}"#),
    )
    .await;
    assert!(again.contains(r#""code":0"#), "{again}");
}

#[tokio::test]
async fn half_a_tls_configuration_is_refused() {
    let mut c = gochat::Config::default();
    c.tls.cert_file = Some("cert.pem".into());
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("tls.cert_file and tls.key_file go together"),
        "{err}"
    );
    c.tls.key_file = Some("/nonexistent/key.pem".into());
    let err = gochat::core::tls::acceptor(&c.tls)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cert.pem"), "{err}");
}

/// gochat's own Rust client, over HTTPS and WSS: two users chat, both directions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_chats_over_wss() {
    use gochat::client::{Client, Event, Tls};
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path());
    let s = start_with(|c| {
        c.tls.cert_file = Some(cert.clone());
        c.tls.key_file = Some(key.clone());
    })
    .await;
    let trust = Tls::trusting_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let mut alice = Client::new_tls(s.api(), trust.clone());
    let mut bob = Client::new_tls(s.api(), trust);
    alice.register("wss-alice", "alice-over-tls").await.unwrap();
    let b = bob.register("wss-bob", "bob-over-tls").await.unwrap();
    let mut a_conn = alice.connect_ws(s.ws(), 1).await.unwrap();
    let mut b_conn = bob.connect_ws(s.ws(), 1).await.unwrap();
    // Both admitted once a count of 2 reaches alice.
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            bob.request_count(1).await.unwrap();
            if let Ok(Ok(Event::Count(2))) =
                tokio::time::timeout(std::time::Duration::from_millis(300), a_conn.next_event())
                    .await
            {
                return;
            }
        }
    })
    .await
    .expect("never both admitted");
    alice.send_room(1, "hello over wss").await.unwrap();
    alice.send_private(b.id, 1, "just for bob").await.unwrap();
    let (mut room, mut private) = (false, false);
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !(room && private) {
            match b_conn.next_event().await.unwrap() {
                Event::Room(m) if m.msg == "hello over wss" => room = true,
                Event::Private(m) if m.msg == "just for bob" => private = true,
                _ => {}
            }
        }
    })
    .await
    .expect("bob did not get both messages");
    // A client trusting nothing of this server's cannot even register.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let mut stranger = Client::new_tls(
        s.api(),
        Tls::trusting_pem(other.cert.pem().as_bytes()).unwrap(),
    );
    let err = stranger
        .register("stranger", "stranger-pw")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
}

/// `tls.tcp = true`: gochat's v1 TCP framing inside TLS; a room message arrives over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tcp_listener_speaks_tls_when_asked() {
    use gochat::core::protocol::tcp::decode_frame;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, connector) = certificate(dir.path());
    let s = start_with(|c| {
        c.tls.cert_file = Some(cert.clone());
        c.tls.key_file = Some(key.clone());
        c.tls.tcp = true;
    })
    .await;
    let reply = https_post(
        &connector,
        s.api(),
        "/user/register",
        r#"{"userName":"tcp-tls","passWord":"tcp-over-tls"}"#,
    )
    .await;
    let token = serde_json::from_str::<serde_json::Value>(&reply).unwrap()["data"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stream = tls(&connector, s.tcp()).await;
    let auth = serde_json::json!({"op": 6, "authToken": token, "roomId": 1}).to_string();
    stream.write_all(&v1(auth.as_bytes())).await.unwrap();
    let push = format!(r#"{{"msg":"tcp in tls","roomId":1,"authToken":"{token}"}}"#);
    let mut buf = bytes::BytesMut::new();
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let r = https_post(&connector, s.api(), "/push/pushRoom", &push).await;
            assert!(r.contains(r#""code":0"#), "{r}");
            let wait = std::time::Duration::from_millis(300);
            while let Ok(Ok(n)) = tokio::time::timeout(wait, stream.read_buf(&mut buf)).await {
                assert!(n > 0, "closed");
                while let Some(frame) = decode_frame(&mut buf, 1 << 20).unwrap() {
                    let text = String::from_utf8_lossy(&frame).to_string();
                    if text.contains("tcp in tls") {
                        return text;
                    }
                }
            }
        }
    })
    .await
    .expect("no room message over TCP in TLS");
    assert!(got.contains(r#""op":3"#), "{got}");
}
