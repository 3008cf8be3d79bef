//! Rooms and presence: admitting and releasing connections, joining and leaving rooms (with
//! op-11/op-12 events for v2 members and rosters for v1 ones), counts and rosters on request,
//! and the connect servers' presence leases.

use crate::service::{Logic, internal, store_unavailable};
use gochat_core::model::{
    Delivery, Log, NO_ROOM, Origin, Presence, PushKind, RoomId, Target, User,
};
use gochat_core::protocol::push::{Roster, encode_count, encode_roster};
use gochat_core::protocol::v2::{OP_JOINED, OP_LEFT, encode_event};
use gochat_core::rpc::{ConnectRequest, Fault, JoinRequest, Welcome};
use std::time::Duration;

impl Logic {
    /// Tell a room's v2 members that `user` joined or left (op 11 / 12).
    async fn announce(
        &self,
        op: i64,
        room_id: RoomId,
        user: &User,
        origin: Option<Origin>,
    ) -> Result<(), Fault> {
        let mut d = Delivery::new(
            self.ids.next_id(),
            Target::Room(room_id),
            PushKind::Event,
            encode_event(op, room_id, user),
        );
        d.origin = origin;
        self.deliver(d).await
    }

    /// Record a connection in `room_id`, announcing the user's first connection there.
    async fn enter(
        &self,
        user: &User,
        room_id: RoomId,
        server_id: &str,
        channel_id: u64,
    ) -> Result<(), Fault> {
        let presence = Presence {
            server_id: server_id.to_owned(),
            user_id: user.id,
            user_name: user.name.clone(),
            room_id,
        };
        let first = self.sessions.join(&presence).await.map_err(internal)?;
        if first && room_id != NO_ROOM && !self.large(room_id).await? {
            let origin = Origin {
                server_id: server_id.to_owned(),
                channel_id,
            };
            self.announce(OP_JOINED, room_id, user, Some(origin))
                .await?;
        }
        Ok(())
    }

    async fn seq(&self, log: Log) -> Result<u64, Fault> {
        if !self.history.enabled {
            return Ok(0);
        }
        self.store.last_seq(log).await.map_err(store_unavailable)
    }

    /// A v1 connection holds one presence, its room's (or none); a v2 connection one that
    /// makes it reachable for private messages whatever rooms it is in, and one per room.
    pub(crate) async fn admit(&self, req: ConnectRequest) -> Result<Welcome, Fault> {
        let user = self.session(&req.token).await?;
        let v2 = req.version >= 2;
        if v2 {
            self.enter(&user, NO_ROOM, &req.server_id, req.channel_id)
                .await?;
        }
        if !v2 || req.room_id != NO_ROOM {
            self.enter(&user, req.room_id, &req.server_id, req.channel_id)
                .await?;
        }
        let (room_seq, inbox_seq) = if v2 {
            let room = match req.room_id {
                NO_ROOM => 0,
                r => self.seq(Log::Room(r)).await?,
            };
            (room, self.seq(Log::Inbox(user.id)).await?)
        } else {
            (0, 0)
        };
        Ok(Welcome {
            user,
            room_seq,
            inbox_seq,
        })
    }

    pub(crate) async fn join_room(&self, req: JoinRequest) -> Result<u64, Fault> {
        let user = self.session(&req.token).await?;
        if req.room_id == NO_ROOM {
            return Err(Fault::Rejected("roomId -1 is no room".into()));
        }
        self.enter(&user, req.room_id, &req.server_id, req.channel_id)
            .await?;
        self.seq(Log::Room(req.room_id)).await
    }

    /// A connection closed or left a room: v1 members get the new roster, v2 members an
    /// op-12 event when it was the user's last connection there — unless the room is large
    /// (`roster_limit`).
    pub(crate) async fn release(&self, presence: Presence) -> Result<(), Fault> {
        let last = self.sessions.leave(&presence).await.map_err(internal)?;
        if presence.room_id == NO_ROOM {
            return Ok(());
        }
        // Large as it was before this leave, as a join counts the user who joins.
        let after = self
            .sessions
            .room_size(presence.room_id)
            .await
            .map_err(internal)?;
        if after + usize::from(last) <= self.config.roster_limit {
            // The turn only here: the leaves of a large room (a server's users all going at
            // once) never wait for each other.
            let turn = self.roster_turn(presence.room_id).await;
            self.publish_members(presence.room_id, after, true).await?;
            drop(turn);
            if last {
                let user = User {
                    id: presence.user_id,
                    name: presence.user_name,
                };
                self.announce(OP_LEFT, presence.room_id, &user, None)
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether a room has more users than `roster_limit` (see there).
    async fn large(&self, room_id: RoomId) -> Result<bool, Fault> {
        let n = self.sessions.room_size(room_id).await.map_err(internal)?;
        Ok(n > self.config.roster_limit)
    }

    /// Publish a room's roster (op 5), or for a large room its count (op 4); `on_leave`
    /// ones go to v1 connections only.
    pub(crate) async fn publish_roster(
        &self,
        room_id: RoomId,
        on_leave: bool,
    ) -> Result<(), Fault> {
        let _turn = self.roster_turn(room_id).await;
        let n = self.sessions.room_size(room_id).await.map_err(internal)?;
        self.publish_members(room_id, n, on_leave).await
    }

    /// [`publish_roster`](Self::publish_roster) for a room known to hold `n` users, by a
    /// caller holding the room's [`roster_turn`](Self::roster_turn): the roster (or count)
    /// is read and queued under it.
    async fn publish_members(
        &self,
        room_id: RoomId,
        n: usize,
        on_leave: bool,
    ) -> Result<(), Fault> {
        if n > self.config.roster_limit {
            return self
                .publish(Target::Room(room_id), PushKind::Count, encode_count(n))
                .await;
        }
        let users = self.sessions.roster(room_id).await.map_err(internal)?;
        let roster: Roster = users
            .into_iter()
            .map(|u| (u.id.to_string(), u.name))
            .collect();
        self.publish(
            Target::Room(room_id),
            PushKind::Roster { on_leave },
            encode_roster(room_id, &roster),
        )
        .await
    }

    pub(crate) async fn push_count(&self, token: String, room_id: RoomId) -> Result<(), Fault> {
        let user = self.session(&token).await?;
        self.limits.info(user.id)?;
        let _turn = self.roster_turn(room_id).await;
        let n = self.sessions.room_size(room_id).await.map_err(internal)?;
        self.publish(Target::Room(room_id), PushKind::Count, encode_count(n))
            .await
    }

    pub(crate) async fn sync_server(
        &self,
        server_id: String,
        presences: Vec<Presence>,
        ttl_ms: u64,
    ) -> Result<(), Fault> {
        self.sessions
            .sync_server(&server_id, &presences, Duration::from_millis(ttl_ms))
            .await
            .map_err(internal)
    }

    pub(crate) async fn renew_server(&self, server_id: String, ttl_ms: u64) -> Result<bool, Fault> {
        self.sessions
            .renew_server(&server_id, Duration::from_millis(ttl_ms))
            .await
            .map_err(internal)
    }
}
