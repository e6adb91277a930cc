//! Conversion of a data directory from store format 1, which kept blocks and tail segments
//! inside sled (`B seq`, `D chat time id`, `T chat seq` with their bytes), to format 2, where
//! they live in the block and tail logs and sled points at them (`I …`, `J …`).
//!
//! It runs on open, a few hundred blocks at a time: each step appends the blocks to the log,
//! syncs it, and then in one sled batch writes their new directory entries and removes the old
//! records. A crash between steps leaves a store that is part converted and still marked format
//! 1; the next open goes on where it stopped. Memory stays that of one step.

use super::chat::BlockMeta;
use super::layout;
use super::model::{MessageId, MsgKey};
use super::{codec, Result, Shared};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The store format converted here.
pub(super) const FORMAT_1: u8 = 1;
/// Format 1's blocks: `B seq` → block bytes.
const V1_BLOCK: u8 = b'B';
/// Format 1's directory: `D chat time id` → [`V1BlockMeta`].
const V1_DIRECTORY: u8 = b'D';
/// Format 1's tail segments: `T chat seq` → segment bytes.
const V1_TAIL: u8 = b'T';
/// Records converted per step.
const STEP: usize = 256;

/// A directory entry of format 1 (no location: the block was under `B seq`).
#[derive(Serialize, Deserialize)]
struct V1BlockMeta {
    first: MsgKey,
    last: MsgKey,
    min_id: MessageId,
    max_id: MessageId,
    count: u32,
    seq: u64,
}

/// Converts the store to format 2; see the module's documentation.
pub(super) fn from_format_1(shared: &Shared) -> Result<()> {
    let started = Instant::now();
    let total = shared.db.scan_prefix([V1_DIRECTORY]).keys().count();
    tracing::info!(
        path = %shared.path.display(),
        blocks = total,
        "converting the data directory from store format 1 to 2 (blocks move into a log beside \
         the index); this runs once, and an interrupted run goes on at the next start"
    );
    let mut done = 0usize;
    let mut reported = Instant::now();
    loop {
        let step: Vec<(sled::IVec, sled::IVec)> = shared
            .db
            .scan_prefix([V1_DIRECTORY])
            .take(STEP)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| shared.io(e))?;
        if step.is_empty() {
            break;
        }
        let mut payloads = Vec::with_capacity(step.len());
        let mut metas = Vec::with_capacity(step.len());
        for (key, value) in &step {
            let (chat, _) = layout::parse_block_key(key)
                .ok_or_else(|| shared.corrupt_msg("a directory key of format 1 is malformed"))?;
            let old: V1BlockMeta =
                codec::decode(value).map_err(|e| shared.corrupt("directory entry", e))?;
            let bytes = shared
                .db
                .get(layout::seq_key(V1_BLOCK, old.seq))
                .map_err(|e| shared.io(e))?
                .ok_or_else(|| {
                    shared.corrupt_msg(format!(
                        "block {} of chat {chat} is missing (format 1)",
                        old.seq
                    ))
                })?;
            payloads.push(bytes);
            metas.push((chat, old));
        }
        let locations = shared.blocks.append(payloads.iter().map(|p| p.as_ref()))?;
        shared.blocks.sync()?;
        let mut batch = sled::Batch::default();
        for (((key, _), (chat, old)), location) in step.iter().zip(metas).zip(locations) {
            let meta = BlockMeta {
                first: old.first,
                last: old.last,
                min_id: old.min_id,
                max_id: old.max_id,
                count: old.count,
                seq: old.seq,
                location,
            };
            batch.remove(key);
            batch.remove(&layout::seq_key(V1_BLOCK, old.seq));
            batch.insert(
                &layout::block_key(layout::DIRECTORY, chat, meta.first),
                codec::encode(&meta),
            );
        }
        shared.db.apply_batch(batch).map_err(|e| shared.io(e))?;
        done += step.len();
        if reported.elapsed().as_secs() >= 5 {
            reported = Instant::now();
            tracing::info!(done, total, "converting blocks");
        }
    }
    loop {
        let step: Vec<(sled::IVec, sled::IVec)> = shared
            .db
            .scan_prefix([V1_TAIL])
            .take(STEP)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| shared.io(e))?;
        if step.is_empty() {
            break;
        }
        let locations = shared
            .tails
            .append(step.iter().map(|(_, bytes)| bytes.as_ref()))?;
        shared.tails.sync()?;
        let mut batch = sled::Batch::default();
        for ((key, _), location) in step.iter().zip(locations) {
            let (chat, seq) = layout::parse_tail_key(key)
                .ok_or_else(|| shared.corrupt_msg("a tail key of format 1 is malformed"))?;
            batch.remove(key);
            batch.insert(&layout::tail_key(chat, seq), codec::encode(&location));
        }
        shared.db.apply_batch(batch).map_err(|e| shared.io(e))?;
    }
    // Blocks no directory entry referenced were unreachable in format 1 as well.
    let mut orphans = sled::Batch::default();
    let mut orphaned = 0;
    for key in shared.db.scan_prefix([V1_BLOCK]).keys() {
        orphans.remove(key.map_err(|e| shared.io(e))?);
        orphaned += 1;
    }
    orphans.insert(layout::meta_key("format"), &[layout::STORE_FORMAT]);
    shared.db.apply_batch(orphans).map_err(|e| shared.io(e))?;
    shared.db.flush().map_err(|e| shared.io(e))?;
    tracing::info!(
        blocks = done,
        unreferenced_blocks_dropped = orphaned,
        seconds = started.elapsed().as_secs_f64(),
        "converted the data directory to store format 2"
    );
    Ok(())
}
