//! PROTOCOL.md §1, row by row, byte for byte, over a real socket.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const CORS: [(&str, &str); 3] = [
    ("access-control-allow-origin", "*"),
    (
        "access-control-allow-headers",
        "Origin, X-Requested-With, Content-Type, Accept",
    ),
    (
        "access-control-allow-methods",
        "GET, OPTIONS, POST, PUT, DELETE",
    ),
];

fn assert_envelope(r: &Reply, body: &str) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    for (k, v) in CORS {
        assert_eq!(r.header(k), Some(v), "{k} on {r:?}");
    }
    assert_eq!(r.body, body);
}

#[tokio::test]
async fn register_login_check_logout() {
    let s = start().await;
    let a = s.api();

    let r = post(
        a,
        "/user/register",
        r#"{"userName":"alice","passWord":"secret-pw"}"#,
    )
    .await;
    let token = r.json()["data"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 44, "token is 32 bytes base64url with padding");
    assert_envelope(
        &r,
        &format!(r#"{{"code":0,"data":"{token}","message":"register success"}}"#),
    );

    // The registration logged alice in.
    let r = post(
        a,
        "/user/checkAuth",
        &format!(r#"{{"authToken":"{token}"}}"#),
    )
    .await;
    assert_envelope(
        &r,
        r#"{"code":0,"data":{"userId":4,"userName":"alice"},"message":"auth success"}"#,
    );

    let r = post(
        a,
        "/user/register",
        r#"{"userName":"alice","passWord":"other-password"}"#,
    )
    .await;
    assert_envelope(
        &r,
        r#"{"code":1,"data":null,"message":"this user name already have , please login !!!"}"#,
    );

    let r = post(
        a,
        "/user/login",
        r#"{"userName":"alice","passWord":"wrong"}"#,
    )
    .await;
    assert_envelope(
        &r,
        r#"{"code":1,"data":null,"message":"no this user or password error!"}"#,
    );
    let r = post(a, "/user/login", r#"{"userName":"nobody","passWord":"x"}"#).await;
    assert_envelope(
        &r,
        r#"{"code":1,"data":null,"message":"no this user or password error!"}"#,
    );

    let r = post(
        a,
        "/user/login",
        r#"{"userName":"alice","passWord":"secret-pw"}"#,
    )
    .await;
    let token2 = r.json()["data"].as_str().unwrap().to_string();
    assert_envelope(
        &r,
        &format!(r#"{{"code":0,"data":"{token2}","message":"login success"}}"#),
    );
    assert_ne!(token, token2);

    // Login revoked the previous token.
    let r = post(
        a,
        "/user/checkAuth",
        &format!(r#"{{"authToken":"{token}"}}"#),
    )
    .await;
    assert_envelope(
        &r,
        r#"{"code":40000,"data":null,"message":"Session error"}"#,
    );

    let r = post(a, "/user/logout", &format!(r#"{{"authToken":"{token2}"}}"#)).await;
    assert_envelope(&r, r#"{"code":0,"data":null,"message":"logout ok!"}"#);
    let r = post(a, "/user/logout", &format!(r#"{{"authToken":"{token2}"}}"#)).await;
    assert_envelope(
        &r,
        r#"{"code":40000,"data":null,"message":"Session error"}"#,
    );
    let r = post(
        a,
        "/user/checkAuth",
        &format!(r#"{{"authToken":"{token2}"}}"#),
    )
    .await;
    assert_envelope(
        &r,
        r#"{"code":40000,"data":null,"message":"Session error"}"#,
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn demo_users_log_in() {
    let s = start().await;
    for (name, id) in [("demo", 1), ("test", 2), ("admin", 3)] {
        let t = login(s.api(), name, "111111").await;
        assert_eq!(user_id(s.api(), &t).await, id);
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn push_routes() {
    let s = start().await;
    let a = s.api();
    let t = login(a, "demo", "111111").await;

    let r = post(
        a,
        "/push/push",
        &format!(r#"{{"msg":"hi","toUserId":"2","roomId":1,"authToken":"{t}"}}"#),
    )
    .await;
    assert_envelope(&r, r#"{"code":0,"data":null,"message":"ok"}"#);
    let r = post(
        a,
        "/push/pushRoom",
        &format!(r#"{{"msg":"hi","roomId":1,"authToken":"{t}","op":3}}"#),
    )
    .await;
    assert_envelope(&r, r#"{"code":0,"data":"","message":"ok"}"#);
    let r = post(
        a,
        "/push/count",
        &format!(r#"{{"roomId":1,"authToken":"{t}"}}"#),
    )
    .await;
    assert_envelope(&r, r#"{"code":0,"data":"","message":"ok"}"#);
    // fix: an empty room answers ok (and pushes an empty roster).
    let r = post(
        a,
        "/push/getRoomInfo",
        &format!(r#"{{"roomId":77,"authToken":"{t}"}}"#),
    )
    .await;
    assert_envelope(&r, r#"{"code":0,"data":"","message":"ok"}"#);

    // fix: an unknown recipient is code 1 (gochat crashed).
    let r = post(
        a,
        "/push/push",
        &format!(r#"{{"msg":"hi","toUserId":"999","roomId":1,"authToken":"{t}"}}"#),
    )
    .await;
    assert_envelope(
        &r,
        r#"{"code":1,"data":null,"message":"no user with id 999"}"#,
    );

    let bad = "not-a-token";
    for (path, body) in [
        (
            "/push/push",
            format!(r#"{{"msg":"hi","toUserId":"2","roomId":1,"authToken":"{bad}"}}"#),
        ),
        (
            "/push/pushRoom",
            format!(r#"{{"msg":"hi","roomId":1,"authToken":"{bad}"}}"#),
        ),
        (
            "/push/count",
            format!(r#"{{"roomId":1,"authToken":"{bad}"}}"#),
        ),
        (
            "/push/getRoomInfo",
            format!(r#"{{"roomId":1,"authToken":"{bad}"}}"#),
        ),
        ("/user/checkAuth", format!(r#"{{"authToken":"{bad}"}}"#)),
        ("/user/logout", format!(r#"{{"authToken":"{bad}"}}"#)),
    ] {
        let r = post(a, path, &body).await;
        assert_envelope(
            &r,
            r#"{"code":40000,"data":null,"message":"Session error"}"#,
        );
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_name_the_problem() {
    let s = start().await;
    let a = s.api();
    let t = login(a, "demo", "111111").await;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "/user/login",
            "".into(),
            "request body is empty; send a JSON object",
        ),
        (
            "/user/login",
            "[1,2]".into(),
            "request body must be a JSON object",
        ),
        (
            "/user/login",
            r#"{"userName":"demo"}"#.into(),
            "passWord is required",
        ),
        (
            "/user/login",
            r#"{"userName":"","passWord":"x"}"#.into(),
            "userName is required",
        ),
        (
            "/user/register",
            r#"{"userName":5,"passWord":"x"}"#.into(),
            "userName must be a string",
        ),
        ("/user/checkAuth", "{}".into(), "authToken is required"),
        (
            "/push/pushRoom",
            format!(r#"{{"msg":"hi","roomId":"1","authToken":"{t}"}}"#),
            "roomId must be an integer",
        ),
        (
            "/push/pushRoom",
            format!(r#"{{"msg":"hi","roomId":0,"authToken":"{t}"}}"#),
            "roomId is required",
        ),
        (
            "/push/pushRoom",
            format!(r#"{{"roomId":1,"authToken":"{t}"}}"#),
            "msg is required",
        ),
        (
            "/push/push",
            format!(r#"{{"msg":"x","roomId":1,"authToken":"{t}"}}"#),
            "toUserId is required",
        ),
        (
            "/push/push",
            format!(r#"{{"msg":"x","toUserId":"abc","roomId":1,"authToken":"{t}"}}"#),
            "toUserId must be a positive user id",
        ),
        (
            "/push/count",
            format!(r#"{{"authToken":"{t}"}}"#),
            "roomId is required",
        ),
    ];
    for (path, body, message) in cases {
        let r = post(a, path, &body).await;
        assert_envelope(
            &r,
            &format!(r#"{{"code":1,"data":null,"message":"{message}"}}"#),
        );
    }
    // Not JSON at all: the message starts with what is wrong, then serde's position.
    let r = post(a, "/user/login", "userName=demo").await;
    assert_eq!(r.json()["code"], 1);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("request body is not valid JSON")
    );
    // Parsed as JSON whatever the Content-Type says.
    let r = request(
        a,
        "POST",
        "/user/login",
        br#"{"userName":"demo","passWord":"111111"}"#,
        "Content-Type: text/plain\r\n",
    )
    .await;
    assert_eq!(r.json()["message"], "login success");
    let t = r.json()["data"].as_str().unwrap().to_string(); // that login revoked the old token
    // Over the body limit.
    let big = format!(r#"{{"userName":"{}","passWord":"x"}}"#, "a".repeat(70_000));
    let r = post(a, "/user/register", &big).await;
    assert_envelope(
        &r,
        r#"{"code":1,"data":null,"message":"request body is over 65536 bytes"}"#,
    );
    // Too long a name and too long a message are refused with a reason.
    let r = post(
        a,
        "/user/register",
        &format!(r#"{{"userName":"{}","passWord":"x"}}"#, "n".repeat(65)),
    )
    .await;
    assert_eq!(r.json()["code"], 1);
    let r = push_room(a, &t, 1, &"m".repeat(4097)).await;
    assert_envelope(
        &r,
        r#"{"code":1,"data":null,"message":"msg is longer than 4096 bytes"}"#,
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn cors_options_and_unknown_routes() {
    let s = start().await;
    let a = s.api();
    for path in ["/user/login", "/anything/else", "/"] {
        let r = request(
            a,
            "OPTIONS",
            path,
            b"",
            "Origin: http://x\r\nAccess-Control-Request-Method: POST\r\n",
        )
        .await;
        assert_eq!(r.status, 200);
        for (k, v) in CORS {
            assert_eq!(r.header(k), Some(v));
        }
    }
    let unknown = r#"{"code":1,"data":null,"message":"please check request url !"}"#;
    assert_envelope(&post(a, "/user/nope", "{}").await, unknown);
    assert_envelope(&post(a, "/", "{}").await, unknown);
    assert_envelope(&request(a, "GET", "/user/login", b"", "").await, unknown);
    assert_envelope(&request(a, "PUT", "/user/login", b"{}", "").await, unknown);
    assert_envelope(
        &request(a, "DELETE", "/push/push", b"{}", "").await,
        unknown,
    );
    // ext: the page and its config are served on GET.
    let page = request(a, "GET", "/", b"", "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>gochat</title>"));
    let cfg = request(a, "GET", "/config.json", b"", "").await;
    assert_eq!(
        cfg.body,
        format!(
            r#"{{"apiPort":{},"wsPort":{},"wsPath":"/ws","roomId":1}}"#,
            a.port(),
            s.ws().port()
        )
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn site_listener_serves_only_the_page() {
    let s = start_with(|c| {
        c.api.site = true;
        c.api.site_addr = "127.0.0.1:0".parse().unwrap();
    })
    .await;
    let site = s.server.site_addr().unwrap();
    let page = request(site, "GET", "/", b"", "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("app.js"));
    assert_eq!(request(site, "GET", "/app.js", b"", "").await.status, 200);
    assert_eq!(post(site, "/user/login", "{}").await.status, 404);
    s.server.shutdown().await;
}
