//! One function per REST route: parse, call logic, answer in gochat's envelope.

use crate::envelope::{self, Body};
use crate::request::{Fields, Invalid};
use gochat_core::rpc::{Fault, LogicService, PushRequest, RoomPushRequest};
use hyper::Response;
use serde::Serialize;

/// `/user/checkAuth`'s data.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthInfo {
    user_id: i64,
    user_name: String,
}

/// The routes, by path.
pub const ROUTES: [&str; 8] = [
    "/user/register",
    "/user/login",
    "/user/checkAuth",
    "/user/logout",
    "/push/push",
    "/push/pushRoom",
    "/push/count",
    "/push/getRoomInfo",
];

/// Run the route at `path` (one of [`ROUTES`]) on a parsed body.
pub async fn dispatch(path: &str, f: &Fields, logic: &dyn LogicService) -> Response<Body> {
    let result = match path {
        "/user/register" => register(f, logic).await,
        "/user/login" => login(f, logic).await,
        "/user/checkAuth" => check_auth(f, logic).await,
        "/user/logout" => logout(f, logic).await,
        "/push/push" => push(f, logic).await,
        "/push/pushRoom" => push_room(f, logic).await,
        "/push/count" => count(f, logic).await,
        "/push/getRoomInfo" => room_info(f, logic).await,
        _ => return envelope::fail(crate::router::BAD_URL),
    };
    result.unwrap_or_else(|e| match e {
        Refusal::Invalid(msg) => envelope::fail(&msg),
        Refusal::Fault(f) => envelope::fault(&f),
    })
}

enum Refusal {
    Invalid(Invalid),
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

type Answer = Result<Response<Body>, Refusal>;

async fn register(f: &Fields, logic: &dyn LogicService) -> Answer {
    let (name, pass) = (f.string("userName")?, f.string("passWord")?);
    Ok(envelope::ok(
        logic.register(name, pass).await?,
        "register success",
    ))
}

async fn login(f: &Fields, logic: &dyn LogicService) -> Answer {
    let (name, pass) = (f.string("userName")?, f.string("passWord")?);
    Ok(envelope::ok(
        logic.login(name, pass).await?,
        "login success",
    ))
}

async fn check_auth(f: &Fields, logic: &dyn LogicService) -> Answer {
    let user = logic.check_auth(f.string("authToken")?).await?;
    let data = AuthInfo {
        user_id: user.id,
        user_name: user.name,
    };
    Ok(envelope::ok(data, "auth success"))
}

async fn logout(f: &Fields, logic: &dyn LogicService) -> Answer {
    logic.logout(f.string("authToken")?).await?;
    Ok(envelope::ok((), "logout ok!"))
}

async fn push(f: &Fields, logic: &dyn LogicService) -> Answer {
    let req = PushRequest {
        msg: f.string("msg")?,
        to_user_id: f.to_user()?,
        room_id: f.room()?,
        token: f.string("authToken")?,
    };
    logic.push(req).await?;
    Ok(envelope::ok((), "ok"))
}

async fn push_room(f: &Fields, logic: &dyn LogicService) -> Answer {
    let req = RoomPushRequest {
        msg: f.string("msg")?,
        room_id: f.room()?,
        token: f.string("authToken")?,
    };
    logic.push_room(req).await?;
    Ok(envelope::ok("", "ok"))
}

async fn count(f: &Fields, logic: &dyn LogicService) -> Answer {
    let room = f.room()?;
    logic.count(f.string("authToken")?, room).await?;
    Ok(envelope::ok("", "ok"))
}

async fn room_info(f: &Fields, logic: &dyn LogicService) -> Answer {
    let room = f.room()?;
    logic.room_info(f.string("authToken")?, room).await?;
    Ok(envelope::ok("", "ok"))
}
