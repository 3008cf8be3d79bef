//! `[runtime]`: how one process spreads its work over threads.

use serde::{Deserialize, Serialize};

/// `[runtime]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Threads of a runtime of their own for what reads from clients and answers them: the
    /// listeners, REST requests, and each long connection's reader with the commands it
    /// runs (v2 posts, joins, history). Connections' writers and the fan-out stay on the
    /// main runtime. There, a woken request queued behind the thousands of writers a room
    /// fan-out wakes (first in, first out): a post whose append took 1 ms was answered
    /// 5–13 ms later. 0 runs everything on the main runtime. Default 1.
    pub answer_threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { answer_threads: 1 }
    }
}

/// More would only compete with the main runtime for the same cores.
pub const MAX_ANSWER_THREADS: usize = 64;
