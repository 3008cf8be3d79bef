//! `[runtime] answer_threads`: the listeners, REST requests and connections' readers run on
//! threads of their own, which the server starts and stops; with 0, or with a runtime the
//! embedding program gives, it starts none. Each way, a REST post and a v2 socket post are
//! answered and delivered. The tests count this process's threads, so they take turns.
#![allow(clippy::unwrap_used)]

mod common;

use common::v2::*;
use common::*;
use gochat::Server;
use serde_json::json;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Threads of this process named `name` (the kernel keeps 15 bytes of a name).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == &name[..name.len().min(15)])
        .count()
}

async fn until_threads(name: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads_named(name) != n {
        assert!(
            Instant::now() < deadline,
            "{} threads named {name}, not {n}",
            threads_named(name)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A post over REST and one over a v2 socket, each answered and delivered to a member;
/// returns the two sockets, still open.
async fn both_posts_answered_and_delivered(s: &TestServer) -> [Client; 2] {
    let token = register(s.api(), "alice").await;
    let mut member = ws_v2_authed(s, &token, 1, None, None).await;
    let (_, first) = post_v2(s, &token, 1, "over rest").await;
    let mut poster = ws_v2_authed(s, &token, -1, None, None).await;
    let post = json!({"op": 3, "id": "p1", "roomId": 1, "msg": "over the socket"});
    let reply = command(&mut poster, post, &mut Vec::new()).await;
    assert_eq!(
        (reply["code"].as_i64(), reply["seq"].as_u64()),
        (Some(0), Some(first + 1))
    );
    let texts: Vec<String> = room_messages(&mut member, 2).await;
    assert_eq!(texts, ["over rest", "over the socket"]);
    [member, poster]
}

/// The next `n` room messages' texts.
async fn room_messages(c: &mut Client, n: usize) -> Vec<String> {
    let mut texts = Vec::new();
    while texts.len() < n {
        let v = next_where(c, |v| v["op"] == 3).await;
        texts.push(v["msg"].as_str().unwrap().to_owned());
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_starts_its_answer_threads_and_stops_them_with_it() {
    let _turn = ONE_AT_A_TIME.lock().await;
    until_threads("gochat-answer", 0).await;
    let s = start_with(|c| c.runtime.answer_threads = 2).await;
    assert_eq!(threads_named("gochat-answer"), 2);
    both_posts_answered_and_delivered(&s).await;
    s.server.shutdown().await;
    until_threads("gochat-answer", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_answer_threads_everything_runs_on_the_callers_runtime() {
    let _turn = ONE_AT_A_TIME.lock().await;
    until_threads("gochat-answer", 0).await;
    let s = start_with(|c| c.runtime.answer_threads = 0).await;
    assert_eq!(threads_named("gochat-answer"), 0);
    both_posts_answered_and_delivered(&s).await;
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedders_runtime_answers_instead_of_threads_of_the_servers_own() {
    let _turn = ONE_AT_A_TIME.lock().await;
    until_threads("gochat-answer", 0).await;
    let answers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("app-answers")
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder()
        .config(test_config(dir.path()))
        .answer_runtime(answers.handle().clone())
        .start()
        .await
        .unwrap();
    let s = TestServer { server, dir };
    assert_eq!(threads_named("gochat-answer"), 0);
    // The listeners run there; then each open connection's reader too.
    let listeners = answers.metrics().num_alive_tasks();
    assert!(
        listeners >= 3,
        "{listeners} tasks: api, WebSocket and TCP listeners"
    );
    let open = both_posts_answered_and_delivered(&s).await;
    let with_readers = answers.metrics().num_alive_tasks();
    assert!(
        with_readers >= listeners + open.len(),
        "{with_readers} tasks with {} connections open, {listeners} without",
        open.len()
    );
    s.server.shutdown().await;
    answers.shutdown_background();
}

#[test]
fn more_answer_threads_than_the_limit_is_a_configuration_error() {
    let e = gochat::Config::from_toml("[runtime]\nanswer_threads = 65\n").unwrap_err();
    assert!(e.to_string().contains("runtime.answer_threads"), "{e}");
    assert_eq!(
        gochat::Config::from_toml("")
            .unwrap()
            .runtime
            .answer_threads,
        1
    );
}
