//! Keeping store work off an async runtime's worker threads.
//!
//! Store calls may wait on disk (sled, the logs, `fsync`) or on a chat's lock held by the group
//! commit while it writes. On a runtime worker that wait stalls every task scheduled there: the
//! bot runs on two workers, so one slow call stops half the bot. Async code therefore reaches the
//! store only through [`blocking`], which runs the work on the runtime's blocking pool.
//!
//! So that the rule cannot silently regress, a handle made with [`Store::checking_runtime`]
//! panics when one of its calls runs on a thread inside a runtime without going through
//! [`blocking`]. The bot uses such a handle in debug builds, and the bot's tests hand it one in
//! every build. Threads outside any runtime (the command line, the commit thread, the chart
//! painter) are never refused.

use super::shared::Store;
use std::cell::Cell;

thread_local! {
    /// Set on a blocking-pool thread while it runs work given to [`blocking`]. Per thread, because
    /// that is what the check is about: which thread a call runs on.
    static OFF_RUNTIME: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` on the async runtime's blocking pool and returns its result: the one way for async
/// code to call the store (and what is built on it: profiles, settings, the reply models).
/// `Err` only when `work` panicked or the runtime is shutting down.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || {
        let _marked = Marked::new();
        work()
    })
    .await
}

/// Marks this thread as running [`blocking`] work until dropped, even by a panic: the pool
/// reuses its threads.
struct Marked;

impl Marked {
    fn new() -> Marked {
        OFF_RUNTIME.with(|off| off.set(true));
        Marked
    }
}

impl Drop for Marked {
    fn drop(&mut self) {
        OFF_RUNTIME.with(|off| off.set(false));
    }
}

/// Whether this thread is inside an async runtime (a worker, or a blocking-pool thread outside
/// [`blocking`]).
fn on_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok() && !OFF_RUNTIME.with(Cell::get)
}

impl Store {
    /// A handle to the same store whose every call panics when made on an async runtime's thread
    /// other than through [`blocking`]: for the bot in debug builds and in tests.
    pub fn checking_runtime(&self) -> Store {
        Store {
            check_runtime: true,
            ..self.clone()
        }
    }

    /// Whether this handle refuses calls on the runtime (see [`Store::checking_runtime`]).
    pub fn checks_runtime(&self) -> bool {
        self.check_runtime
    }

    /// Panics on a refused thread (see [`Store::checking_runtime`]); every public call passes
    /// here.
    pub(super) fn check_thread(&self) {
        if self.check_runtime && on_runtime() {
            panic!(
                "a store call ran on an async runtime thread: call it through \
                 chatkeeper::store::blocking (Ctx::blocking in the bot), so that waiting on disk \
                 does not stall the runtime"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FlushPolicy, StoreConfig};

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.flush = FlushPolicy::Manual;
        let store = Store::open(config).unwrap();
        (dir, store)
    }

    #[test]
    fn a_checking_handle_refuses_calls_on_the_runtime_and_allows_them_through_blocking() {
        let (_dir, store) = open();
        let checked = store.checking_runtime();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        // On a worker: refused, loudly.
        let on_worker = checked.clone();
        let refused = runtime.block_on(runtime.spawn(async move { on_worker.global_stats() }));
        let panic = refused.unwrap_err().into_panic();
        let message = panic
            .downcast_ref::<&str>()
            .copied()
            .or(panic.downcast_ref::<String>().map(String::as_str))
            .unwrap();
        assert!(message.contains("chatkeeper::store::blocking"), "{message}");
        // A blocking-pool thread that did not come through `blocking` is refused too.
        let unmarked = checked.clone();
        let refused = runtime.block_on(runtime.spawn_blocking(move || unmarked.flush()));
        assert!(refused.unwrap_err().is_panic());
        // Through `blocking`: allowed, and the thread is let go afterwards.
        let allowed = checked.clone();
        let flushed = runtime.block_on(blocking(move || allowed.flush()));
        assert!(flushed.unwrap().is_ok());
        // Outside any runtime, and with an unchecked handle anywhere: allowed.
        checked.flush().unwrap();
        let unchecked = store.clone();
        runtime
            .block_on(runtime.spawn(async move { unchecked.global_stats() }))
            .unwrap();
    }
}
