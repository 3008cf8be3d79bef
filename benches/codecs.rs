//! The wire codecs: push encoding, auth frame decoding, TCP and WebSocket framing.
//! `cargo bench --bench codecs`.

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gochat::core::protocol::auth::decode_auth;
use gochat::core::protocol::push::{ChatMessage, OP_ROOM, Roster, encode_message, encode_roster};
use gochat::core::protocol::tcp::{MAX_PAYLOAD, decode_frame, encode_frame};
use gochat::core::protocol::ws::text_frame;
use std::hint::black_box;

fn codecs(c: &mut Criterion) {
    let m = ChatMessage {
        code: 0,
        msg: "hello, this is a typical chat line of some forty bytes".into(),
        from_user_id: 10,
        from_user_name: "alice".into(),
        to_user_id: 0,
        to_user_name: String::new(),
        room_id: 1,
        op: OP_ROOM,
        create_time: "2026-11-26 19:31:32".into(),
    };
    let encoded = encode_message(&m);
    let roster: Roster = (0..100)
        .map(|i| (i.to_string(), format!("user{i}")))
        .collect();
    let auth = br#"{"authToken":"DWIYrDhGbj9_wO50XkNhFZh-Z1eaOJ_7TmcAc2gjwl4=","roomId":1}"#;
    let frame = encode_frame(&encoded).unwrap_or_default();

    let mut g = c.benchmark_group("codecs");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode room message", |b| {
        b.iter(|| encode_message(black_box(&m)))
    });
    g.bench_function("encode roster of 100", |b| {
        b.iter(|| encode_roster(1, black_box(&roster)))
    });
    g.bench_function("decode auth frame", |b| {
        b.iter(|| decode_auth(black_box(auth)))
    });
    g.bench_function("websocket text frame", |b| {
        b.iter(|| text_frame(black_box(&encoded)))
    });
    g.bench_function("tcp encode frame", |b| {
        b.iter(|| encode_frame(black_box(&encoded)))
    });
    g.bench_function("tcp decode frame", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&frame[..]);
            decode_frame(black_box(&mut buf), MAX_PAYLOAD)
        })
    });
    g.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
