//! # gochat-logic
//!
//! The logic layer: register / login / logout / checkAuth (argon2id passwords, 44-char
//! tokens, single-login revocation), admitting and releasing connections (presence in
//! [`Sessions`](gochat_core::Sessions)), storing messages in the
//! [`Store`](gochat_core::Store) before turning them into [`Delivery`]s on the
//! [`Queue`](gochat_core::Queue), and history pages. It holds no state of its own, so
//! instances scale out.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use gochat_core::{config::{LogicConfig, QueueConfig}, *};
//! use gochat_core::rpc::LogicService;
//! use std::sync::Arc;
//! let logic = gochat_logic::Logic::new(
//!     LogicConfig::default(),
//!     Arc::new(SqliteStore::in_memory()?),
//!     Arc::new(MemorySessions::new()),
//!     Arc::new(MemoryQueue::new(&QueueConfig::default())),
//! )?;
//! let token = logic.register("alice".into(), "secret".into()).await?;
//! assert_eq!(logic.check_auth(token).await?.name, "alice");
//! # Ok(()) }
//! ```
//!
//! [`Delivery`]: gochat_core::model::Delivery

mod accounts;
mod limits;
mod messages;
pub mod password;
mod reconcile;
mod retention;
mod rooms;
mod service;
pub mod token;

pub use accounts::{BAD_LOGIN, NAME_TAKEN};
pub use messages::HISTORY_DISABLED;
pub use reconcile::reconcile_presence;
pub use retention::run_retention;
pub use service::{Error, Logic};
