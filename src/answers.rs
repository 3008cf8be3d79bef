//! The answer threads (`[runtime] answer_threads`): a tokio runtime of their own for what
//! reads from clients and answers them — the listeners, REST requests, each long
//! connection's reader with the commands it runs — so that an answer never waits behind a
//! room fan-out, whose writers stay on the main runtime.
//!
//! Why: a fan-out wakes one writer task per member, thousands at once, and tokio's run
//! queues are first in, first out. A request woken meanwhile (its append committed, say)
//! waits for all of them: in the 2 000-member burst a post's append took ~1 ms and its task
//! resumed 5–13 ms later. And a busy runtime polls its I/O driver only every so many tasks,
//! so a command frame waited ~2 ms before it was read. Sockets accepted on the answer
//! threads are registered with their driver; a woken answer thread is run by the kernel
//! beside the main runtime's workers.

use tokio::runtime::{Builder, Handle, Runtime};

/// The runtime, owned by the [`Server`](crate::Server) that started it.
pub(crate) struct AnswerThreads {
    runtime: Option<Runtime>,
}

impl AnswerThreads {
    /// `threads` worker threads named `gochat-answer`; none for 0.
    pub(crate) fn start(threads: usize) -> std::io::Result<Option<Self>> {
        if threads == 0 {
            return Ok(None);
        }
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("gochat-answer")
            .enable_all()
            .build()?;
        Ok(Some(Self {
            runtime: Some(runtime),
        }))
    }

    /// Where to spawn.
    pub(crate) fn handle(&self) -> Option<Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }
}

impl Drop for AnswerThreads {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which a task of another runtime may not
        // do; by now its tasks have finished (the layers stopped) or are abandoned.
        if let Some(r) = self.runtime.take() {
            r.shutdown_background();
        }
    }
}
