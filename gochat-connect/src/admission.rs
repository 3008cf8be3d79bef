//! Admitting an authenticated connection through logic and releasing it, the same for every
//! transport. Both first wait for a turn among `connect.admissions_in_flight` (so a connect
//! storm queues here, not at logic past its deadline), then hold the presence gate shared,
//! so a re-assertion of the whole presence never interleaves with them.

use crate::channel::{Channel, Framing, HoldKey};
use crate::close::{self, CloseReason};
use crate::state::Shared;
use gochat_core::model::NO_ROOM;
use gochat_core::protocol::auth::AuthFrame;
use gochat_core::protocol::v2;
use gochat_core::rpc::{ConnectRequest, Fault};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::SemaphorePermit;

/// An admitted connection: in the hub, its presence recorded. Release it with
/// [`Admitted::release`]; if it is dropped instead (its session panicked), it is released
/// in the background.
pub(crate) struct Admitted {
    ch: Arc<Channel>,
    shared: Arc<Shared>,
    released: bool,
    /// Counts it against its user's open connections until it goes.
    _per_user: Option<gochat_core::limits::OpenTicket<gochat_core::model::UserId>>,
}

/// What a new connection gets: its place, its queue, and (v2) the logs to replay from
/// where — held back in the channel until the replay is written.
pub(crate) struct Entered {
    pub(crate) admitted: Admitted,
    pub(crate) rx: crate::Outgoing,
    pub(crate) replays: Vec<(HoldKey, u64)>,
}

/// Why a connection was not admitted: its close reason and, for a v2 client, the op-10
/// refusal to send first.
pub(crate) struct Refused {
    pub(crate) reason: CloseReason,
    pub(crate) reply: Option<Vec<u8>>,
}

impl From<CloseReason> for Refused {
    fn from(reason: CloseReason) -> Self {
        Self {
            reason,
            reply: None,
        }
    }
}

/// Ask logic to admit a connection; on success it is in the hub and receiving pushes. A v2
/// connection's first frame is the op-10 auth reply, queued before anything can be pushed.
pub(crate) async fn admit(
    shared: &Arc<Shared>,
    auth: AuthFrame,
    framing: Framing,
) -> Result<Entered, Refused> {
    let v2 = auth.version >= 2;
    let refuse = |reason: CloseReason, code: i32, message: &str| Refused {
        reason,
        reply: v2.then(|| v2::encode_reply(Some("auth"), code, message, &[])),
    };
    let turn = turn(shared)
        .await
        .map_err(|reason| refuse(reason, 1, reason.reason))?;
    let gate = shared.presence_gate.read().await;
    let logic = shared.peers.logic().await.map_err(|e| {
        tracing::warn!("connect: no logic instance: {e}");
        refuse(close::UNAVAILABLE, 1, "service unavailable")
    })?;
    let channel_id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let welcome = logic
        .connect(ConnectRequest {
            token: auth.auth_token.clone(),
            room_id: auth.room_id,
            server_id: shared.config.server_id.clone(),
            channel_id,
            version: auth.version,
        })
        .await
        .map_err(|f| match f {
            Fault::Session => refuse(close::UNKNOWN_TOKEN, 40_000, "Session error"),
            f => {
                // The join may have been recorded though its answer was lost.
                shared.presence_dirty.store(true, Ordering::Relaxed);
                tracing::warn!("connect: logic refused a connection: {f}");
                refuse(close::UNAVAILABLE, 1, &f.to_string())
            }
        })?;
    let (ch, rx) = Channel::new(
        channel_id,
        welcome.user.id,
        welcome.user.name.clone(),
        auth.room_id,
        auth.auth_token,
        framing,
        shared.config.channel_queue,
    );
    let mut replays = Vec::new();
    let ch = if v2 {
        let ch = ch.v2();
        if let (Some(since), true) = (auth.since, auth.room_id != NO_ROOM) {
            ch.hold(HoldKey::Room(auth.room_id));
            replays.push((HoldKey::Room(auth.room_id), since));
        }
        if let Some(since) = auth.inbox_since {
            ch.hold(HoldKey::Inbox);
            replays.push((HoldKey::Inbox, since));
        }
        let reply = v2::encode_auth_reply(&welcome.user, welcome.room_seq, welcome.inbox_seq);
        if let Some(f) = framing.frame(&reply) {
            ch.push(f);
        }
        ch
    } else {
        ch
    };
    let ch = Arc::new(ch);
    let per_user = shared.addresses.admit_user(welcome.user.id);
    shared.hub.put(ch.clone());
    // Logic and the hub agree now. A refusal below releases through logic again, which
    // takes a turn and the gate of its own (holding them here could wait on itself).
    drop((gate, turn));
    let Ok(per_user) = per_user else {
        // Logic has recorded its presence: release it properly before refusing.
        let refused = Admitted {
            ch,
            shared: shared.clone(),
            released: false,
            _per_user: None,
        };
        refused.release().await;
        gochat_core::metrics::metrics().limited("connections_per_user");
        return Err(refuse(close::USER_LIMIT, 1, close::USER_LIMIT.reason));
    };
    let admitted = Admitted {
        ch,
        shared: shared.clone(),
        released: false,
        _per_user: per_user,
    };
    Ok(Entered {
        admitted,
        rx,
        replays,
    })
}

impl Admitted {
    /// The connection as the hub holds it.
    pub(crate) fn channel(&self) -> &Arc<Channel> {
        &self.ch
    }

    /// Take the connection out of the hub and tell logic (which updates presence and the
    /// rooms' rosters).
    pub(crate) async fn release(mut self) {
        self.released = true;
        release(&self.shared, &self.ch).await;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if !self.released {
            let (shared, ch) = (self.shared.clone(), self.ch.clone());
            self.shared
                .tasks
                .spawn(async move { release(&shared, &ch).await });
        }
    }
}

/// Wait for a place among `connect.admissions_in_flight`, at most `admission_wait_secs`.
async fn turn(shared: &Shared) -> Result<SemaphorePermit<'_>, CloseReason> {
    /// Counts a connection as waiting until its wait ends, however it ends.
    struct Waiting;
    impl Drop for Waiting {
        fn drop(&mut self) {
            gochat_core::metrics::metrics().admissions_waiting.dec();
        }
    }
    gochat_core::metrics::metrics().admissions_waiting.inc();
    let _waiting = Waiting;
    tokio::select! {
        permit = tokio::time::timeout(shared.config.admission_wait(), shared.admissions.acquire()) => {
            match permit {
                Ok(Ok(permit)) => Ok(permit),
                Ok(Err(_closed)) => Err(close::SHUTTING_DOWN),
                Err(_elapsed) => Err(close::BUSY),
            }
        }
        _ = shared.shutdown.cancelled() => Err(close::SHUTTING_DOWN),
    }
}

async fn release(shared: &Shared, ch: &Channel) {
    // A leave waits its turn too, without a bound: it must reach logic.
    let _turn = shared.admissions.acquire().await;
    let _gate = shared.presence_gate.read().await;
    let presences = ch.presences(&shared.config.server_id);
    shared.hub.remove(ch);
    for presence in presences {
        let outcome = match shared.peers.logic().await {
            Ok(logic) => logic.disconnect(presence).await.map_err(|f| f.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = outcome {
            shared.presence_dirty.store(true, Ordering::Relaxed);
            tracing::warn!(
                "connect: disconnect of user {} not recorded (presence will be re-asserted): {e}",
                ch.user_id
            );
        }
    }
}
