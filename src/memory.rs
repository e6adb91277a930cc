//! Process-wide memory settings, made once at start-up.

/// Malloc arenas for a long-running process (the bot): one. By default glibc gives each thread
/// that allocates an arena of its own (up to eight per core), and memory freed into one arena is
/// not reused by another: the store's writer, its group-commit thread and the runtime's workers
/// hand messages to each other, so per-thread arenas held several MiB each of freed memory.
/// Measured on the bulk-ingest benchmark, one arena lowered peak RSS from 50 to 44 MiB and was
/// faster (fewer cache-cold pages).
pub const ONE_ARENA: i32 = 1;

/// Malloc arenas for an import, a one-off job whose four busy threads (parser, store writer,
/// profiles, group commit) all allocate: one arena serialises them. glibc hands a thread an arena
/// when it first allocates and shares them out beyond the limit, so this bounds the arenas rather
/// than giving each thread its own. Measured with `bench-import` (1M messages, single-chat
/// export): 1 arena 1.5× SQLite at 33 MiB, 2 arenas 2.2× at 43 MiB, 4 arenas 2.6–2.7× at
/// 50–56 MiB.
pub const IMPORT_ARENAS: i32 = 4;

/// Limits glibc's allocator to `arenas` arenas. Must run before any thread is spawned.
/// `MALLOC_ARENA_MAX` in the environment overrides it.
pub fn limit_malloc_arenas(arenas: i32) {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

/// Hands the allocator's free memory back to the system (glibc's `malloc_trim`). With one arena,
/// memory freed between live allocations (a model dropped from its cache, a backup's buffers, a
/// chart's canvas) stays part of the process otherwise: glibc returns only the top of the heap.
/// Measured on the bot benchmark, it brings the resting RSS from 55.6 to 49.7 MiB after the
/// replies. It walks the free lists holding the arena's lock (0.4-1.4 ms in that run, during which
/// other threads' allocations wait): the bot calls it every 10 s from a maintenance task, off
/// the async workers.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
