//! The protocol-v2 command decoder: whatever a v2 client sends after its auth frame. Never
//! panics; a parsed command keeps its `id` within the limit, and an accepted post has text.
#![no_main]

use gochat_core::protocol::v2::{Command, MAX_ID_BYTES, decode_command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode_command(data) {
        if let Some(id) = &req.id {
            assert!(id.len() <= MAX_ID_BYTES);
        }
        match req.command {
            Ok(Command::Post { msg, room_id }) => assert!(!msg.is_empty() && room_id != 0),
            Ok(Command::Private { to_user_id, msg, .. }) => assert!(to_user_id > 0 && !msg.is_empty()),
            Ok(Command::History { limit: Some(l), .. }) => assert!(l > 0),
            _ => {}
        }
    }
});
