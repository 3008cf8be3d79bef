//! One function per REST route: parse, call logic, answer in gochat's envelope. [`ROUTES`]
//! lists them once; the router asks it whether a path exists and which function answers.

use crate::envelope::{self, Body};
use crate::request::{Fields, Invalid};
use futures::future::BoxFuture;
use gochat_core::model::Range;
use gochat_core::protocol::v2;
use gochat_core::rpc::{Fault, HistoryRequest, LogicService, Posted, PushRequest, RoomPushRequest};
use hyper::Response;
use serde::Serialize;
use serde_json::{Value, json};

/// `/user/checkAuth`'s data.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthInfo {
    user_id: i64,
    user_name: String,
}

/// A route's function.
type Handler = for<'a, 'b> fn(&'a Fields<'b>, &'a dyn LogicService) -> BoxFuture<'a, Answer>;

/// Every REST route: its path and the function that answers it.
pub const ROUTES: [(&str, Handler); 9] = [
    ("/user/register", |f, l| Box::pin(register(f, l))),
    ("/user/login", |f, l| Box::pin(login(f, l))),
    ("/user/checkAuth", |f, l| Box::pin(check_auth(f, l))),
    ("/user/logout", |f, l| Box::pin(logout(f, l))),
    ("/push/push", |f, l| Box::pin(push(f, l))),
    ("/push/pushRoom", |f, l| Box::pin(push_room(f, l))),
    ("/push/count", |f, l| Box::pin(count(f, l))),
    ("/push/getRoomInfo", |f, l| Box::pin(room_info(f, l))),
    ("/push/history", |f, l| Box::pin(history(f, l))),
];

/// The function answering `path`, if it is a route.
pub fn route(path: &str) -> Option<Handler> {
    ROUTES.iter().find(|(p, _)| *p == path).map(|(_, h)| *h)
}

/// Answer a parsed body with `handler`, turning refusals into gochat's envelope; and
/// whether it succeeded (code 0).
pub async fn answer(
    handler: Handler,
    f: &Fields<'_>,
    logic: &dyn LogicService,
) -> (Response<Body>, bool) {
    match handler(f, logic).await {
        Ok(r) => (r, true),
        Err(Refusal::Invalid(msg)) => (envelope::fail(&msg), false),
        Err(Refusal::Fault(f)) => (envelope::fault(&f), false),
    }
}

/// Why a route refused a request.
pub enum Refusal {
    /// The body was wrong (code 1, the message names the field).
    Invalid(Invalid),
    /// Logic refused it.
    Fault(Fault),
}

impl From<Invalid> for Refusal {
    fn from(s: Invalid) -> Self {
        Refusal::Invalid(s)
    }
}

impl From<Fault> for Refusal {
    fn from(f: Fault) -> Self {
        Refusal::Fault(f)
    }
}

/// What a route's function returns.
pub type Answer = Result<Response<Body>, Refusal>;

async fn register(f: &Fields<'_>, logic: &dyn LogicService) -> Answer {
    let (name, pass) = (f.string("userName")?, f.string("passWord")?);
    Ok(envelope::ok(
        logic.register(name, pass).await?,
        "register success",
    ))
}

async fn login(f: &Fields<'_>, logic: &dyn LogicService) -> Answer {
    let (name, pass) = (f.string("userName")?, f.string("passWord")?);
    Ok(envelope::ok(
        logic.login(name, pass).await?,
        "login success",
    ))
}

async fn check_auth(f: &Fields<'_>, logic: &dyn LogicService) -> Answer {
    let user = logic.check_auth(f.string("authToken")?).await?;
    let data = AuthInfo {
        user_id: user.id,
        user_name: user.name,
    };
    Ok(envelope::ok(data, "auth success"))
}

async fn logout(f: &Fields<'_>, logic: &dyn LogicService) -> Answer {
    logic.logout(f.string("authToken")?).await?;
    Ok(envelope::ok((), "logout ok!"))
}

/// A v2 post's data: `{"msgId":"…","seq":n}` (`seq` absent without history).
fn posted(p: Posted) -> Value {
    let mut data = json!({"msgId": p.msg_id.to_string()});
    if let Some(seq) = p.seq {
        data["seq"] = seq.into();
    }
    data
}

async fn push(f: &Fields<'_>, logic: &dyn LogicService) -> Answer {
    let req = PushRequest {
        msg: f.string("msg")?,
        to_user_id: f.to_user()?,
        room_id: f.room()?,
        token: f.string("authToken")?,
        client_id: f.client_id()?,
        origin: None,
    };
    let p = logic.push(req).await?;
    Ok(match f.version() {
        2 => envelope::ok(posted(p), "ok"),
        _ => envelope::ok((), "ok"),
    })
}

async fn push_room(f: &Fields<'_>, logic: &dyn LogicService) -> Answer {
    let req = RoomPushRequest {
        msg: f.string("msg")?,
        room_id: f.room()?,
        token: f.string("authToken")?,
        client_id: f.client_id()?,
        origin: None,
    };
    let p = logic.push_room(req).await?;
    Ok(match f.version() {
        2 => envelope::ok(posted(p), "ok"),
        _ => envelope::ok("", "ok"),
    })
}

async fn history(f: &Fields<'_>, logic: &dyn LogicService) -> Answer {
    let range = match (f.opt_count("since")?, f.opt_count("before")?) {
        (Some(_), Some(_)) => {
            return Err(Refusal::Invalid("give since or before, not both".into()));
        }
        (Some(s), None) => Range::Since(s),
        (None, Some(b)) => Range::Before(b),
        (None, None) => Range::Latest,
    };
    let limit = match f.opt_count("limit")? {
        Some(0) => return Err(Refusal::Invalid("limit must be positive".into())),
        l => l.map(|l| l as usize),
    };
    let page = logic
        .history(HistoryRequest {
            token: f.string("authToken")?,
            room_id: f.opt_int("roomId")?.unwrap_or(0),
            range,
            limit,
        })
        .await?;
    #[derive(Serialize)]
    struct Data {
        messages: Box<serde_json::value::RawValue>,
        more: bool,
    }
    let data = Data {
        messages: v2::messages_json(&page.messages),
        more: page.more,
    };
    Ok(envelope::ok(data, "ok"))
}

async fn count(f: &Fields<'_>, logic: &dyn LogicService) -> Answer {
    let room = f.room()?;
    logic.count(f.string("authToken")?, room).await?;
    Ok(envelope::ok("", "ok"))
}

async fn room_info(f: &Fields<'_>, logic: &dyn LogicService) -> Answer {
    let room = f.room()?;
    logic.room_info(f.string("authToken")?, room).await?;
    Ok(envelope::ok("", "ok"))
}
