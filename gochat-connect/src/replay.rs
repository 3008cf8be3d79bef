//! Replays: what a v2 client missed in a room or its inbox, written before the live stream
//! of that log resumes. The channel holds live messages of the log back meanwhile
//! ([`Channel::hold`]), and releases those past the replay afterwards — no gap, no duplicate.

use crate::channel::{Channel, HoldKey};
use crate::state::Shared;
use gochat_core::model::Range;
use gochat_core::protocol::v2;
use gochat_core::rpc::{Fault, HistoryRequest};

/// The room id of a log as op 9 and `/push/history` name it (0: the inbox).
pub(crate) fn room_of(key: HoldKey) -> i64 {
    match key {
        HoldKey::Room(r) => r,
        HoldKey::Inbox => 0,
    }
}

/// Queue the messages of `key` after `since` (at most `connect.replay_limit`, oldest first),
/// then go live. Returns whether more were missed than replayed (the client pages the rest).
pub(crate) async fn replay(
    shared: &Shared,
    ch: &Channel,
    key: HoldKey,
    since: u64,
) -> Result<bool, Fault> {
    let read = async {
        let logic = shared
            .peers
            .logic()
            .await
            .map_err(|e| Fault::Unavailable(e.to_string()))?;
        logic
            .history(HistoryRequest {
                token: ch.token.clone(),
                room_id: room_of(key),
                range: Range::Since(since),
                limit: Some(shared.config.replay_limit.max(1)),
            })
            .await
    };
    let page = match read.await {
        Ok(p) => p,
        Err(f) => {
            ch.release(key, since);
            return Err(f);
        }
    };
    let mut last = since;
    for m in &page.messages {
        if let Some(f) = ch.framing.frame(&v2::encode_stored(m)) {
            ch.push(f);
        }
        last = last.max(m.seq);
    }
    ch.release(key, last);
    Ok(page.more)
}

/// The replays a v2 connection asked for in its auth frame: each followed, if it left
/// messages behind, by `{"op":10,"id":"replay",…,"more":true}`; a replay that cannot be
/// read is answered with an op-10 error in its place.
pub(crate) async fn at_auth(shared: &Shared, ch: &Channel, replays: Vec<(HoldKey, u64)>) {
    for (key, since) in replays {
        let frame = match replay(shared, ch, key, since).await {
            Ok(true) => Some(v2::encode_replay_more(room_of(key))),
            Ok(false) => None,
            Err(f) => Some(v2::encode_reply(
                Some("replay"),
                f.code(),
                &f.to_string(),
                &[("roomId", v2::raw(room_of(key)))],
            )),
        };
        if let Some(f) = frame.and_then(|f| ch.framing.frame(&f)) {
            ch.push(f);
        }
    }
}
