//! Index changes staged by group commits and rewrites, applied as one sled batch once the logs
//! they reference are synced.

/// Index changes whose log records are appended: one sled batch once the logs are synced.
#[derive(Default)]
pub(super) struct Staged {
    pub(super) batch: sled::Batch,
    /// Blocks sealed or rewritten in the batch.
    pub(super) blocks: usize,
}
