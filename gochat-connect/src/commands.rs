//! The commands of a v2 connection (PROTOCOL.md §6.4), each answered with an op-10 reply:
//! posts (as the connection's user), private messages, joining and leaving rooms, history
//! pages, pings. A frame that is not a command closes the connection, as in v1.

use crate::channel::{Channel, Framing, HoldKey};
use crate::close::{self, CloseReason};
use crate::replay;
use crate::state::Shared;
use gochat_core::model::{Origin, Page, Range};
use gochat_core::protocol::v2::{self, Command, Extra};
use gochat_core::rpc::{
    Fault, HistoryRequest, JoinRequest, LogicService, Posted, PushRequest, RoomPushRequest,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Carry out one command frame and queue its reply; `Err` closes the connection.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    ch: &Arc<Channel>,
    payload: &[u8],
) -> Result<(), CloseReason> {
    let req = v2::decode_command(payload).map_err(|_| close::BAD_JSON)?;
    let id = req.id.as_deref();
    let reply = match req.command {
        Err(why) => v2::encode_reply(id, 1, &why, &[]),
        Ok(command) => match run(shared, ch, command, req.id.clone()).await {
            Ok(extras) => v2::encode_ok(id, &extras),
            Err(f) => v2::encode_reply(id, f.code(), &f.to_string(), &[]),
        },
    };
    let framed = ch.framing.frame(&reply).or_else(|| {
        // Only a reply past a TCP frame's 32 KiB gets here (history pages are cut to fit).
        let why = "the reply does not fit in one frame of this transport";
        ch.framing.frame(&v2::encode_reply(id, 1, why, &[]))
    });
    if let Some(f) = framed {
        ch.push(f);
    }
    Ok(())
}

/// Room left in a frame for the reply's envelope around the messages (id, code, message).
const ENVELOPE: usize = 256;

/// Cut a page to what one frame of `framing` carries, keeping the messages next to where
/// the reader stands (the first ones for `since`, the last otherwise): `more` then says the
/// rest is there to page.
fn fit_page(framing: Framing, page: &mut Page, range: Range) {
    let budget = framing.max_payload().saturating_sub(ENVELOPE);
    let sizes: Vec<usize> = page
        .messages
        .iter()
        .map(|m| v2::encode_stored(m).len() + 1)
        .collect();
    if sizes.iter().sum::<usize>() <= budget {
        return;
    }
    let fits = |sizes: &mut dyn Iterator<Item = &usize>| {
        let mut used = 0;
        sizes
            .take_while(|s| {
                used += **s;
                used <= budget
            })
            .count()
    };
    page.more = true;
    if matches!(range, Range::Since(_)) {
        let keep = fits(&mut sizes.iter());
        page.messages.truncate(keep);
    } else {
        let keep = fits(&mut sizes.iter().rev());
        page.messages.drain(..page.messages.len() - keep);
    }
}

fn rejected(why: impl Into<String>) -> Fault {
    Fault::Rejected(why.into())
}

async fn logic(shared: &Shared) -> Result<Arc<dyn LogicService>, Fault> {
    shared
        .peers
        .logic()
        .await
        .map_err(|e| Fault::Unavailable(e.to_string()))
}

fn posted(p: Posted) -> Vec<Extra<'static>> {
    let mut extras = vec![("msgId", v2::raw(p.msg_id.to_string()))];
    if let Some(seq) = p.seq {
        extras.push(("seq", v2::raw(seq)));
    }
    extras
}

/// Carry out `command`; a post's `id` is its idempotency key.
async fn run(
    shared: &Arc<Shared>,
    ch: &Arc<Channel>,
    command: Command,
    id: Option<String>,
) -> Result<Vec<Extra<'static>>, Fault> {
    let origin = || {
        Some(Origin {
            server_id: shared.config.server_id.clone(),
            channel_id: ch.id,
        })
    };
    match command {
        Command::Ping => Ok(Vec::new()),
        Command::Post { room_id, msg } => {
            let p = logic(shared)
                .await?
                .push_room(RoomPushRequest {
                    token: ch.token.clone(),
                    room_id,
                    msg,
                    client_id: id,
                    origin: origin(),
                })
                .await?;
            Ok(posted(p))
        }
        Command::Private {
            to_user_id,
            msg,
            room_id,
        } => {
            let p = logic(shared)
                .await?
                .push(PushRequest {
                    token: ch.token.clone(),
                    to_user_id,
                    room_id,
                    msg,
                    client_id: id,
                    origin: origin(),
                })
                .await?;
            Ok(posted(p))
        }
        Command::Join { room_id, since } => join(shared, ch, room_id, since).await,
        Command::Leave { room_id } => {
            leave(shared, ch, room_id).await?;
            Ok(Vec::new())
        }
        Command::History {
            room_id,
            range,
            limit,
        } => {
            let mut page = logic(shared)
                .await?
                .history(HistoryRequest {
                    token: ch.token.clone(),
                    room_id,
                    range,
                    limit,
                })
                .await?;
            fit_page(ch.framing, &mut page, range);
            let Page { messages, more } = page;
            Ok(vec![
                ("messages", v2::messages_json(&messages)),
                ("more", v2::raw(more)),
            ])
        }
    }
}

/// Join one more room (replaying it from `since`), answering with its latest seq.
async fn join(
    shared: &Arc<Shared>,
    ch: &Arc<Channel>,
    room_id: i64,
    since: Option<u64>,
) -> Result<Vec<Extra<'static>>, Fault> {
    let limit = shared.config.max_rooms_per_connection;
    if ch.in_room(room_id) {
        return Err(rejected(format!("already in room {room_id}")));
    }
    if ch.room_count() >= limit {
        return Err(rejected(format!(
            "room limit reached: a connection may be in {limit} rooms"
        )));
    }
    let seq = {
        let _gate = shared.presence_gate.read().await;
        let seq = logic(shared)
            .await?
            .join(JoinRequest {
                token: ch.token.clone(),
                room_id,
                server_id: shared.config.server_id.clone(),
                channel_id: ch.id,
            })
            .await?;
        if since.is_some() {
            ch.hold(HoldKey::Room(room_id));
        }
        shared.hub.join_room(ch, room_id);
        seq
    };
    let mut extras = vec![("seq", v2::raw(seq))];
    if let Some(since) = since {
        match replay::replay(shared, ch, HoldKey::Room(room_id), since).await {
            Ok(true) => extras.push(("more", v2::raw(true))),
            Ok(false) => {}
            Err(f) => {
                // A join that cannot replay what was asked did not happen.
                let _ = leave(shared, ch, room_id).await;
                return Err(f);
            }
        }
    }
    Ok(extras)
}

/// Leave a room: out of the hub's index, and logic told (roster, op-12 event).
async fn leave(shared: &Shared, ch: &Channel, room_id: i64) -> Result<(), Fault> {
    let _gate = shared.presence_gate.read().await;
    if !shared.hub.leave_room(ch, room_id) {
        return Err(rejected(format!("not in room {room_id}")));
    }
    let presence = ch.presence_in(&shared.config.server_id, room_id);
    if let Err(f) = logic(shared).await?.disconnect(presence).await {
        shared.presence_dirty.store(true, Ordering::Relaxed);
        return Err(f);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gochat_core::model::{StoredMessage, User};

    fn page(n: u64) -> Page {
        let messages = (1..=n)
            .map(|seq| StoredMessage {
                msg_id: seq as i64,
                seq,
                room_id: 1,
                from: User {
                    id: 1,
                    name: "a".into(),
                },
                to: None,
                msg: "x".repeat(1000),
                created_ms: 0,
            })
            .collect();
        Page {
            messages,
            more: false,
        }
    }

    #[test]
    fn a_page_too_big_for_a_tcp_frame_is_cut_next_to_the_reader() {
        let mut p = page(200);
        fit_page(Framing::Tcp, &mut p, Range::Since(0));
        let seqs: Vec<u64> = p.messages.iter().map(|m| m.seq).collect();
        assert!(p.more && seqs.len() > 10 && seqs.len() < 200);
        assert_eq!(seqs[0], 1, "since: the oldest are kept");
        let reply = v2::encode_ok(Some("h"), &[("messages", v2::messages_json(&p.messages))]);
        assert!(Framing::Tcp.frame(&reply).is_some(), "the cut page fits");

        let mut p = page(200);
        fit_page(Framing::Tcp, &mut p, Range::Before(201));
        assert!(p.more);
        assert_eq!(
            p.messages.last().unwrap().seq,
            200,
            "before: the newest are kept"
        );

        let mut p = page(200);
        fit_page(Framing::WebSocket, &mut p, Range::Latest);
        assert_eq!(
            (p.messages.len(), p.more),
            (200, false),
            "WebSocket frames take it all"
        );
    }
}
