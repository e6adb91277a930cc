//! Store errors: each says what went wrong, where, and what to do.

use super::codec::CodecError;
use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the data directory {path}: {source}. Check that the path is right, that \
             no other chatkeeper process uses it, and that it is a chatkeeper data directory \
             (restore it from a backup with `chatkeeper restore` if it is damaged)"
    )]
    Open { path: PathBuf, source: sled::Error },
    #[error(
        "the data directory {path} is damaged: {what}. Run `chatkeeper verify --repair`, or \
             restore the latest backup with `chatkeeper restore`"
    )]
    Corrupt { path: PathBuf, what: String },
    #[error(
        "the data directory {path} is in use by another chatkeeper process: stop it first \
         (systemctl stop chatkeeper), or use the bot's own /backup command while it runs"
    )]
    Locked { path: PathBuf },
    #[error("storage error in {path}: {source}")]
    Io { path: PathBuf, source: sled::Error },
    #[error(
        "cannot read or write {path}: {source}. Check that the disk has free space and that \
         the data directory belongs to the user running chatkeeper"
    )]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the store in {path} takes no more changes: an update of its index failed (the error \
         before this one says why; check the disk). Restart chatkeeper: opening the store reads \
         the index afresh and finishes a postings flush that was cut short"
    )]
    Halted { path: PathBuf },
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    pub(crate) fn corrupt(
        path: &std::path::Path,
        what: impl std::fmt::Display,
        err: CodecError,
    ) -> Self {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            what: format!("{what}: {err}"),
        }
    }
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
