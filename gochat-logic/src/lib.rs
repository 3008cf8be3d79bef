//! # gochat-logic
//!
//! The logic layer: register / login / logout / checkAuth (argon2id passwords, 44-char
//! tokens, single-login revocation), admitting and releasing connections (presence in
//! [`Sessions`](gochat_core::Sessions)), and turning pushes into [`Delivery`]s on the
//! [`Queue`](gochat_core::Queue). It holds no state of its own, so instances scale out.
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

pub mod password;
mod reconcile;
mod service;
pub mod token;

pub use reconcile::reconcile_presence;
pub use service::{BAD_LOGIN, Error, Logic, NAME_TAKEN};
