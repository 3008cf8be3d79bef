//! Messages: a post is stored first (its seq assigned), then queued for delivery, then
//! acknowledged; history pages come back from the Store.

use crate::service::{Logic, store_unavailable};
use gochat_core::model::{Delivery, Log, NewMessage, Page, PushKind, Stamp, Stored, Target, User};
use gochat_core::protocol::push::{ChatMessage, OP_PRIVATE, OP_ROOM, encode_message};
use gochat_core::protocol::time::format_utc;
use gochat_core::rpc::{Fault, HistoryRequest, Posted, PushRequest, RoomPushRequest};

/// The answer to `since` and op 9 when history is off.
pub const HISTORY_DISABLED: &str = "history is disabled";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Logic {
    fn check_msg(&self, msg: &str) -> Result<(), Fault> {
        if msg.is_empty() {
            return Err(Fault::Rejected("msg is empty".into()));
        }
        if msg.len() > self.config.max_msg_bytes {
            return Err(Fault::Rejected(format!(
                "msg is longer than {} bytes",
                self.config.max_msg_bytes
            )));
        }
        Ok(())
    }

    /// Store `m` when history is on (returning its ids); with history off it only gets its
    /// id and time.
    async fn store(&self, m: NewMessage) -> Result<Stored, Fault> {
        if !self.history.enabled {
            return Ok(Stored {
                msg_id: m.id,
                seq: 0,
                peer_seq: 0,
                created_ms: m.created_ms,
                duplicate: false,
            });
        }
        let started = std::time::Instant::now();
        let stored = self
            .store
            .append(m, self.history.dedup_window())
            .await
            .map_err(store_unavailable)?;
        let metrics = gochat_core::metrics::metrics();
        metrics
            .store_append
            .observe(started.elapsed().as_secs_f64());
        if stored.duplicate {
            metrics.duplicates.inc();
        } else {
            metrics.stored.inc();
        }
        Ok(stored)
    }

    /// Queue a stored message. A repeated client id (the post was retried) is queued again
    /// under the first post's id: connect drops it where it was delivered already, and it
    /// reaches those who missed it if the first attempt was never queued.
    async fn deliver_message(
        &self,
        stored: &Stored,
        target: Target,
        payload: Vec<u8>,
        origin: Option<gochat_core::model::Origin>,
    ) -> Result<Posted, Fault> {
        let on = self.history.enabled;
        let seq = on.then_some(stored.seq);
        let peer_seq = (on && stored.peer_seq > 0).then_some(stored.peer_seq);
        let mut d = Delivery::new(stored.msg_id, target, PushKind::Message, payload);
        d.stamp = Some(Stamp {
            msg_id: stored.msg_id,
            seq,
            peer_seq,
        });
        d.origin = origin;
        self.deliver(d).await?;
        Ok(Posted {
            msg_id: stored.msg_id,
            seq,
        })
    }

    pub(crate) async fn post_room(&self, req: RoomPushRequest) -> Result<Posted, Fault> {
        let from = self.session(&req.token).await?;
        self.check_msg(&req.msg)?;
        self.limits.post(from.id)?;
        let stored = self
            .store(NewMessage {
                id: self.ids.next_id(),
                room_id: req.room_id,
                from: from.clone(),
                to: None,
                msg: req.msg.clone(),
                created_ms: now_ms(),
                client_id: req.client_id,
            })
            .await?;
        gochat_core::metrics::metrics().posted("room", via(&req.origin));
        let payload = encode_message(&ChatMessage {
            code: 0,
            msg: req.msg,
            from_user_id: from.id,
            from_user_name: from.name,
            to_user_id: 0,
            to_user_name: String::new(),
            room_id: req.room_id,
            op: OP_ROOM,
            create_time: format_utc(stored.created_ms.div_euclid(1000)),
        });
        self.deliver_message(&stored, Target::Room(req.room_id), payload, req.origin)
            .await
    }

    pub(crate) async fn post_private(&self, req: PushRequest) -> Result<Posted, Fault> {
        let from = self.session(&req.token).await?;
        self.check_msg(&req.msg)?;
        self.limits.post(from.id)?;
        let Some(to) = self.user_by_id(req.to_user_id).await? else {
            return Err(Fault::Rejected(format!(
                "no user with id {}",
                req.to_user_id
            )));
        };
        let stored = self
            .store(NewMessage {
                id: self.ids.next_id(),
                room_id: req.room_id,
                from: from.clone(),
                to: Some(to.clone()),
                msg: req.msg.clone(),
                created_ms: now_ms(),
                client_id: req.client_id,
            })
            .await?;
        gochat_core::metrics::metrics().posted("private", via(&req.origin));
        let target = Target::Conversation {
            from: from.id,
            to: to.id,
        };
        let payload = private_payload(&from, &to, req.room_id, req.msg);
        self.deliver_message(&stored, target, payload, req.origin)
            .await
    }

    pub(crate) async fn read_history(&self, req: HistoryRequest) -> Result<Page, Fault> {
        let reader = self.session(&req.token).await?;
        if !self.history.enabled {
            return Err(Fault::Rejected(HISTORY_DISABLED.into()));
        }
        let log = match req.room_id {
            0 => Log::Inbox(reader.id),
            room => Log::Room(room),
        };
        let limit = req
            .limit
            .unwrap_or(self.history.default_page)
            .clamp(1, self.history.page_limit);
        let page = self
            .store
            .read(log, req.range, limit)
            .await
            .map_err(store_unavailable)?;
        gochat_core::metrics::metrics().history_pages.inc();
        Ok(page)
    }
}

/// An op-2 push as gochat sends it (`createTime` empty).
fn private_payload(from: &User, to: &User, room_id: i64, msg: String) -> Vec<u8> {
    encode_message(&ChatMessage {
        code: 0,
        msg,
        from_user_id: from.id,
        from_user_name: from.name.clone(),
        to_user_id: to.id,
        to_user_name: to.name.clone(),
        room_id,
        op: OP_PRIVATE,
        create_time: String::new(),
    })
}

/// Where a post came in, as a metrics label: a v2 socket command carries its origin.
fn via(origin: &Option<gochat_core::model::Origin>) -> &'static str {
    if origin.is_some() { "socket" } else { "rest" }
}
