//! Runs password hashing (argon2id: ~19 MiB and tens of milliseconds per hash) off the async
//! executor, at most one hash per CPU core at a time, each reusing a preallocated buffer.
//!
//! Unbounded, every concurrent login got its own blocking thread and a fresh 19 MiB buffer:
//! 50 concurrent logins grew the process from 12 MB to 3.5 GB, and even bounded, allocating a
//! fresh buffer per hash fragmented the heap up to ~1 GB. Hashing is CPU-bound, so running more
//! hashes than cores adds memory and latency, never throughput. The limit is per process
//! because what it protects — the machine's cores and memory — is.

use securevox_domain::HashMemory;
use std::sync::{Mutex, OnceLock, PoisonError};
use tokio::sync::Semaphore;

struct Workers {
    permits: Semaphore,
    /// One working buffer per permit, handed to whichever hash holds the permit.
    buffers: Mutex<Vec<HashMemory>>,
}

fn workers() -> &'static Workers {
    static WORKERS: OnceLock<Workers> = OnceLock::new();
    WORKERS.get_or_init(|| Workers {
        permits: Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        ),
        buffers: Mutex::new(Vec::new()),
    })
}

/// Runs `work` with a reusable hash buffer on a blocking thread once a core is free. The
/// permit is taken first, so waiting requests cost a small future each, not a thread.
///
/// The permit and the buffer live inside the blocking task: if the request is cancelled (the
/// client hangs up) the hash still finishes, and only then are the core and the buffer handed
/// back, so cancellations can neither exceed the limit nor leak buffers.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let workers = workers();
    // The semaphore is never closed, so acquiring cannot fail.
    let permit = workers.permits.acquire().await;
    tokio::task::spawn_blocking(move || {
        let mut memory = workers
            .buffers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let result = work(&mut memory);
        workers.buffers.lock().unwrap_or_else(PoisonError::into_inner).push(memory);
        drop(permit);
        result
    })
    .await
}
