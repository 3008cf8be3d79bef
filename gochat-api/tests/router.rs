//! The REST routes, called through the router directly — no socket — over a stub logic
//! layer that records what it was asked: each route parses its body, calls logic with the
//! right request, and answers in gochat's envelope, byte for byte.
#![allow(clippy::unwrap_used, missing_docs)]

use async_trait::async_trait;
use bytes::Bytes;
use gochat_api::{LogicRef, PageConfig, State, router};
use gochat_core::config::ApiConfig;
use gochat_core::model::{Page, Presence, RoomId, StoredMessage, User};
use gochat_core::rpc::{
    ConnectRequest, Fault, HistoryRequest, JoinRequest, LogicService, Posted, PushRequest,
    RoomPushRequest, Welcome,
};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use std::sync::{Arc, Mutex};

/// Answers like a logic layer with one user, `alice` (id 10, token `tok`), and records calls.
#[derive(Default)]
struct Stub {
    calls: Mutex<Vec<String>>,
}

impl Stub {
    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    fn session(&self, token: &str) -> Result<User, Fault> {
        match token {
            "tok" => Ok(User {
                id: 10,
                name: "alice".into(),
            }),
            _ => Err(Fault::Session),
        }
    }
}

#[async_trait]
impl LogicService for Stub {
    async fn register(&self, name: String, password: String) -> Result<String, Fault> {
        self.log(format!("register {name} {password}"));
        match name.as_str() {
            "alice" => Err(Fault::Rejected(
                "this user name already have , please login !!!".into(),
            )),
            _ => Ok("new-token".into()),
        }
    }
    async fn login(&self, name: String, password: String) -> Result<String, Fault> {
        self.log(format!("login {name} {password}"));
        Ok("tok".into())
    }
    async fn check_auth(&self, token: String) -> Result<User, Fault> {
        self.session(&token)
    }
    async fn logout(&self, token: String) -> Result<(), Fault> {
        self.session(&token).map(|_| ())
    }
    async fn connect(&self, _: ConnectRequest) -> Result<Welcome, Fault> {
        unreachable!("not a REST route")
    }
    async fn join(&self, _: JoinRequest) -> Result<u64, Fault> {
        unreachable!("not a REST route")
    }
    async fn history(&self, req: HistoryRequest) -> Result<Page, Fault> {
        let reader = self.session(&req.token)?;
        self.log(format!(
            "history {} {:?} {:?}",
            req.room_id, req.range, req.limit
        ));
        Ok(Page {
            messages: vec![StoredMessage {
                msg_id: 77,
                seq: 3,
                room_id: 1,
                from: reader,
                to: None,
                msg: "old".into(),
                created_ms: 0,
            }],
            more: true,
        })
    }
    async fn disconnect(&self, _: Presence) -> Result<(), Fault> {
        unreachable!("not a REST route")
    }
    async fn push(&self, req: PushRequest) -> Result<Posted, Fault> {
        self.session(&req.token)?;
        self.log(format!(
            "push {} {} {} {:?}",
            req.to_user_id, req.room_id, req.msg, req.client_id
        ));
        Ok(Posted {
            msg_id: 9_000_000_000_000_000_001,
            seq: Some(4),
        })
    }
    async fn push_room(&self, req: RoomPushRequest) -> Result<Posted, Fault> {
        self.session(&req.token)?;
        self.log(format!(
            "push_room {} {} {:?}",
            req.room_id, req.msg, req.client_id
        ));
        Ok(Posted {
            msg_id: 5,
            seq: Some(12),
        })
    }
    async fn count(&self, token: String, room_id: RoomId) -> Result<(), Fault> {
        self.session(&token)?;
        self.log(format!("count {room_id}"));
        Ok(())
    }
    async fn room_info(&self, token: String, room_id: RoomId) -> Result<(), Fault> {
        self.session(&token)?;
        self.log(format!("room_info {room_id}"));
        Ok(())
    }
    async fn sync_presence(&self, _: String, _: Vec<Presence>, _: u64) -> Result<(), Fault> {
        unreachable!("not a REST route")
    }
    async fn renew_presence(&self, _: String, _: u64) -> Result<bool, Fault> {
        unreachable!("not a REST route")
    }
}

fn state(stub: Arc<Stub>) -> State {
    let page = PageConfig {
        api_port: 7070,
        ws_port: 7000,
        ws_path: "/ws".into(),
        ws_url: None,
        room_id: 1,
    };
    State::new(ApiConfig::default(), LogicRef::Direct(stub), &page)
}

async fn call(state: &State, method: Method, path: &str, body: &str) -> (u16, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = router::handle(req, state).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn every_route_calls_logic_and_answers_in_the_envelope() {
    let stub = Arc::new(Stub::default());
    let s = state(stub.clone());
    let post = |path: &'static str, body: &'static str| call(&s, Method::POST, path, body);
    let cases = [
        (
            "/user/register",
            r#"{"userName":"bob","passWord":"pw"}"#,
            r#"{"code":0,"data":"new-token","message":"register success"}"#,
        ),
        (
            "/user/register",
            r#"{"userName":"alice","passWord":"pw"}"#,
            r#"{"code":1,"data":null,"message":"this user name already have , please login !!!"}"#,
        ),
        (
            "/user/login",
            r#"{"userName":"alice","passWord":"pw"}"#,
            r#"{"code":0,"data":"tok","message":"login success"}"#,
        ),
        (
            "/user/checkAuth",
            r#"{"authToken":"tok"}"#,
            r#"{"code":0,"data":{"userId":10,"userName":"alice"},"message":"auth success"}"#,
        ),
        (
            "/user/checkAuth",
            r#"{"authToken":"nope"}"#,
            r#"{"code":40000,"data":null,"message":"Session error"}"#,
        ),
        (
            "/user/logout",
            r#"{"authToken":"tok"}"#,
            r#"{"code":0,"data":null,"message":"logout ok!"}"#,
        ),
        (
            "/push/push",
            r#"{"msg":"hi","toUserId":"3","roomId":1,"authToken":"tok"}"#,
            r#"{"code":0,"data":null,"message":"ok"}"#,
        ),
        (
            "/push/pushRoom",
            r#"{"msg":"hello","roomId":1,"authToken":"tok","op":3}"#,
            r#"{"code":0,"data":"","message":"ok"}"#,
        ),
        (
            "/push/count",
            r#"{"roomId":2,"authToken":"tok"}"#,
            r#"{"code":0,"data":"","message":"ok"}"#,
        ),
        (
            "/push/getRoomInfo",
            r#"{"roomId":2,"authToken":"tok"}"#,
            r#"{"code":0,"data":"","message":"ok"}"#,
        ),
        (
            "/push/pushRoom",
            r#"{"msg":"hello","authToken":"tok"}"#,
            r#"{"code":1,"data":null,"message":"roomId is required"}"#,
        ),
        (
            "/push/push",
            r#"{"msg":"x","toUserId":"abc","roomId":1,"authToken":"tok"}"#,
            r#"{"code":1,"data":null,"message":"toUserId must be a positive user id"}"#,
        ),
        (
            "/push/pushRoom",
            r#"{"msg":"v2","roomId":1,"authToken":"tok","v":2,"id":"c-9"}"#,
            r#"{"code":0,"data":{"msgId":"5","seq":12},"message":"ok"}"#,
        ),
        (
            "/push/push",
            r#"{"msg":"v2","toUserId":"3","roomId":1,"authToken":"tok","v":2}"#,
            r#"{"code":0,"data":{"msgId":"9000000000000000001","seq":4},"message":"ok"}"#,
        ),
        (
            "/push/history",
            r#"{"authToken":"tok","roomId":1,"before":9,"limit":20}"#,
            r#"{"code":0,"data":{"messages":[{"code":0,"msg":"old","fromUserId":10,"fromUserName":"alice","toUserId":0,"toUserName":"","roomId":1,"op":3,"createTime":"1970-01-01 00:00:00","msgId":"77","seq":3}],"more":true},"message":"ok"}"#,
        ),
        (
            "/push/history",
            r#"{"authToken":"tok","since":1,"before":2}"#,
            r#"{"code":1,"data":null,"message":"give since or before, not both"}"#,
        ),
    ];
    for (path, body, want) in cases {
        let (status, got) = post(path, body).await;
        assert_eq!((status, got.as_str()), (200, want), "{path} {body}");
    }
    assert_eq!(
        *stub.calls.lock().unwrap(),
        [
            "register bob pw",
            "register alice pw",
            "login alice pw",
            "push 3 1 hi None",
            "push_room 1 hello None",
            "count 2",
            "room_info 2",
            "push_room 1 v2 Some(\"c-9\")",
            "push 3 1 v2 None",
            "history 1 Before(9) Some(20)",
        ]
    );
}

#[tokio::test]
async fn unknown_routes_bad_bodies_and_preflight() {
    let stub = Arc::new(Stub::default());
    let s = state(stub.clone());
    let bad_url = r#"{"code":1,"data":null,"message":"please check request url !"}"#;
    assert_eq!(
        call(&s, Method::POST, "/nope", "{}").await,
        (200, bad_url.into())
    );
    assert_eq!(
        call(&s, Method::PUT, "/user/login", "{}").await,
        (200, bad_url.into())
    );
    assert_eq!(
        call(&s, Method::GET, "/nope", "").await,
        (200, bad_url.into())
    );
    let (status, body) = call(&s, Method::OPTIONS, "/user/login", "").await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (_, empty) = call(&s, Method::POST, "/user/login", "").await;
    assert!(empty.contains("request body is empty"), "{empty}");
    let (_, junk) = call(&s, Method::POST, "/user/login", "{nope").await;
    assert!(junk.contains("not valid JSON"), "{junk}");
    let (_, page) = call(&s, Method::GET, "/", "").await;
    assert!(page.contains("<html"), "the page is served");
    assert!(
        stub.calls.lock().unwrap().is_empty(),
        "logic never called for any of these"
    );
}
