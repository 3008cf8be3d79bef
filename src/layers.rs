//! [`Layers`]: which of gochat's layers a process runs.

/// Which layers a [`Server`](crate::Server) runs. Standalone is [`Layers::ALL`]; each
/// service binary runs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    /// REST API and web page.
    pub api: bool,
    /// Auth, sessions, routing.
    pub logic: bool,
    /// Queue consumer.
    pub task: bool,
    /// Long connections.
    pub connect: bool,
}

impl Layers {
    /// Every layer (standalone).
    pub const ALL: Self = Self {
        api: true,
        logic: true,
        task: true,
        connect: true,
    };
    /// Only the api layer.
    pub const API: Self = Self {
        api: true,
        logic: false,
        task: false,
        connect: false,
    };
    /// Only the logic layer.
    pub const LOGIC: Self = Self {
        api: false,
        logic: true,
        task: false,
        connect: false,
    };
    /// Only the task layer.
    pub const TASK: Self = Self {
        api: false,
        logic: false,
        task: true,
        connect: false,
    };
    /// Only the connect layer.
    pub const CONNECT: Self = Self {
        api: false,
        logic: false,
        task: false,
        connect: true,
    };
}
