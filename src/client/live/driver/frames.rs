//! What the server sends a [`Driver`]: pushes (messages, counts, rosters, join and leave
//! events) and the op-10 replies to its commands, each routed to the log, the waiting
//! caller or the event stream it belongs to.

use super::{Driver, Internal, Log, Pending};
use crate::client::ClientError;
use crate::client::live::link::Link;
use crate::client::live::{HistoryPage, LiveEvent, Message, Posted};
use gochat_core::model::{RoomId, User};
use serde_json::Value;

impl Driver {
    pub(super) async fn on_text(&mut self, t: &[u8], link: &mut Link) -> Result<(), ClientError> {
        let Ok(v) = serde_json::from_slice::<Value>(t) else {
            return Err(ClientError::Protocol(
                "the server sent something that is not JSON".into(),
            ));
        };
        let room_id = num(&v, "roomId");
        match v["op"].as_i64() {
            Some(op @ (2 | 3)) => {
                let log = if op == 3 {
                    Log::Room(room_id)
                } else {
                    Log::Inbox
                };
                self.arrive(log, message(&v), link).await?;
            }
            Some(4) => self.emit(LiveEvent::Count(v["count"].as_u64().unwrap_or(0) as usize)),
            Some(5) => {
                let users = serde_json::from_value(v["roomUserInfo"].clone()).unwrap_or_default();
                self.emit(LiveEvent::Roster { room_id, users });
            }
            Some(op @ (11 | 12)) => {
                let user = User {
                    id: num(&v, "userId"),
                    name: v["userName"].as_str().unwrap_or_default().to_owned(),
                };
                self.emit(if op == 11 {
                    LiveEvent::Joined { room_id, user }
                } else {
                    LiveEvent::Left { room_id, user }
                });
            }
            Some(10) => self.on_reply(&v, link).await?,
            _ => {}
        }
        Ok(())
    }

    async fn on_reply(&mut self, v: &Value, link: &mut Link) -> Result<(), ClientError> {
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        let ok = v["code"] == 0;
        match id.as_str() {
            "keepalive" => return Ok(()),
            "sync" => {
                if let Some(messages) = self.recovering.take() {
                    self.emit(LiveEvent::Recovered { messages });
                }
                return Ok(());
            }
            "replay" => {
                if ok && v["more"] == true {
                    let log = match num(v, "roomId") {
                        0 => Log::Inbox,
                        r => Log::Room(r),
                    };
                    self.page_on(log, link).await?;
                }
                return Ok(());
            }
            _ => {}
        }
        if let Some(internal) = self.internal.remove(&id) {
            match internal {
                Internal::Join(room) => {
                    if ok {
                        self.joined(room, v, link).await?;
                    }
                }
                Internal::Page(log) => {
                    let items: Vec<(u64, Message)> = if ok {
                        v["messages"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|m| Some((m["seq"].as_u64()?, message(m))))
                                    .collect()
                            })
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    let more = ok && v["more"] == true;
                    if let Some(o) = self.logs.get_mut(&log) {
                        let now = tokio::time::Instant::now();
                        let out = match ok {
                            true => o.page(items, more, now),
                            false => o.page_refused(now),
                        };
                        self.settle(log, out, link).await?;
                    }
                }
            }
            return Ok(());
        }
        self.deadlines.remove(&id);
        match self.pending.remove(&id) {
            Some(Pending::Post {
                log,
                to,
                text,
                room_id,
                reply,
                ..
            }) => {
                if !ok {
                    let _ = reply.send(Err(refused(v)));
                    // A gap held back for this post is looked at again (paged if due).
                    if let Some(o) = self.logs.get_mut(&log) {
                        let out = o.recheck(tokio::time::Instant::now());
                        self.settle(log, out, link).await?;
                    }
                    return Ok(());
                }
                let posted = Posted {
                    msg_id: v["msgId"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    seq: v["seq"].as_u64(),
                };
                let _ = reply.send(Ok(posted));
                if to.is_none() && !self.rooms.contains(&room_id) {
                    // A post to a room this connection is not in is only answered: the
                    // room's messages are not ours to hand over, nor its gaps to page.
                    return Ok(());
                }
                // The post is part of its log: handed over in order like any other message.
                let own = Message {
                    msg_id: posted.msg_id,
                    seq: posted.seq,
                    room_id,
                    from: self.me.clone(),
                    to: to.map(|id| User {
                        id,
                        name: self.names.get(&id).cloned().unwrap_or_default(),
                    }),
                    text,
                    create_time: if to.is_none() {
                        gochat_core::protocol::time::format_utc(now_secs())
                    } else {
                        String::new()
                    },
                };
                if posted.seq.is_some() {
                    self.arrive(log, own, link).await?;
                } else {
                    self.emit(LiveEvent::Message(own));
                }
            }
            Some(Pending::History { reply, .. }) => {
                let _ = reply.send(if ok {
                    Ok(HistoryPage {
                        messages: v["messages"]
                            .as_array()
                            .map(|a| a.iter().map(message).collect())
                            .unwrap_or_default(),
                        more: v["more"] == true,
                    })
                } else {
                    Err(refused(v))
                });
            }
            Some(Pending::Join(room, reply)) => {
                if ok {
                    self.joined(room, v, link).await?;
                } else {
                    self.rooms.remove(&room);
                }
                let _ = reply.send(if ok { Ok(()) } else { Err(refused(v)) });
            }
            Some(Pending::Leave(reply)) => {
                let _ = reply.send(if ok { Ok(()) } else { Err(refused(v)) });
            }
            None => {}
        }
        Ok(())
    }

    /// A join was answered: the room's log starts (or resumes) at the seq it gives.
    async fn joined(
        &mut self,
        room: RoomId,
        v: &Value,
        link: &mut Link,
    ) -> Result<(), ClientError> {
        self.baseline(Log::Room(room), v["seq"].as_u64().unwrap_or(0));
        if v["more"] == true {
            self.page_on(Log::Room(room), link).await?;
        }
        Ok(())
    }
}

pub(super) fn num(v: &Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or(0)
}

fn message(v: &Value) -> Message {
    let to = match num(v, "toUserId") {
        0 => None,
        id => Some(User {
            id,
            name: v["toUserName"].as_str().unwrap_or_default().to_owned(),
        }),
    };
    Message {
        msg_id: v["msgId"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        seq: v["seq"].as_u64(),
        room_id: num(v, "roomId"),
        from: User {
            id: num(v, "fromUserId"),
            name: v["fromUserName"].as_str().unwrap_or_default().to_owned(),
        },
        to,
        text: v["msg"].as_str().unwrap_or_default().to_owned(),
        create_time: v["createTime"].as_str().unwrap_or_default().to_owned(),
    }
}

pub(super) fn refused(v: &Value) -> ClientError {
    ClientError::Refused {
        code: num(v, "code"),
        message: v["message"].as_str().unwrap_or_default().to_owned(),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
