//! Conversion of a data directory from earlier store formats (`layout.rs` has them all).
//!
//! **Format 4 → 5**: the chat records (`H chat`) gain a public username, rewritten in one sled
//! batch with the new marker (a store has a few thousand chats at most). Frames are not
//! rewritten: format 5 frames end with a column of forum topics when one of their messages is
//! in a topic; format 4 frames lack it and read as messages in no topic.
//!
//! **Format 3 → 4**: the directory's runs, 16 blocks each under `I chat run`, are re-keyed by
//! their first block (`I chat time id`, `directory.rs`), a step of runs per sled batch; a crash
//! between steps leaves a store still marked format 3, whose converted runs the next open skips.
//!
//! **Format 2 → 3**: profiles, each a sled record in format 2, are settled into chunks in the
//! profiles log (`profiles.rs`), a step at a time; a crash between steps leaves records that the
//! next open (or the group commit) settles, as it settles live writes.
//!
//! **Format 1 → 2**: format 1 kept everything inside sled; in format 2 blocks, tail segments,
//! checkpoints and postings chunks live in logs and sled points at them. Family by family: `B`+`D` → block log + `I`, `T` →
//! tail log + `J`, `C` → tail log + `K`, `P` → postings log + `L`, `Q` → `N` markers. Blocks go
//! through `E chat time id` (moved, with their location) before their chat's directory runs
//! are written.
//!
//! It runs on open, a few hundred blocks at a time: each step appends the blocks to the log,
//! syncs it, and then in one sled batch writes their new directory entries and removes the old
//! records. A crash between steps leaves a store that is part converted and still marked format
//! 1; the next open goes on where it stopped. Memory stays that of one step.

use super::chunks::ChunkPointer;
use super::counters::Checkpoint;
use super::directory::{BlockMeta, RUN_BLOCKS};
use super::layout;
use super::model::{ChatId, ChatInfo, ChatInfoV1, MessageId, MsgKey};
use super::postings;
use super::shared::Shared;
use super::{codec, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The store formats converted here.
pub(super) const FORMAT_1: u8 = 1;
pub(super) const FORMAT_2: u8 = 2;
pub(super) const FORMAT_3: u8 = 3;
pub(super) const FORMAT_4: u8 = 4;
const FORMAT_5: u8 = 5;
// The last conversion writes format 5: a new format adds its own step after it.
const _: () = assert!(layout::STORE_FORMAT == FORMAT_5);
/// Format 1's blocks: `B seq` → block bytes.
const V1_BLOCK: u8 = b'B';
/// Format 1's directory: `D chat time id` → [`V1BlockMeta`].
const V1_DIRECTORY: u8 = b'D';
/// Format 1's tail segments: `T chat seq` → segment bytes.
const V1_TAIL: u8 = b'T';
/// Format 1's checkpoints: `C chat` → checkpoint.
const V1_CHECKPOINT: u8 = b'C';
/// Format 1's postings chunks: `P user time seq` → chunk.
const V1_POSTINGS: u8 = b'P';
/// Format 1's pending postings: `Q seq` → the block's refs.
const V1_PENDING: u8 = b'Q';
/// Blocks already moved to the log, before their chat's directory runs are written:
/// `E chat time id` → [`BlockMeta`].
const MOVED: u8 = b'E';
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

/// A checkpoint of format 1 (users and days as plain pairs).
#[derive(Deserialize)]
struct V1Checkpoint {
    covered_seq: u64,
    total: u64,
    service: u64,
    users: Vec<(i64, u64)>,
    hours: Vec<u64>,
    days: Vec<(i64, u64)>,
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
                &layout::block_key(MOVED, chat, meta.first),
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
    write_runs(shared)?;
    convert(shared, V1_TAIL, |key, bytes, batch| {
        let (chat, seq) = layout::parse_tail_key(key)
            .ok_or_else(|| shared.corrupt_msg("a tail key of format 1 is malformed"))?;
        let location = shared.tails.append([bytes])?[0];
        batch.insert(&layout::tail_key(chat, seq), codec::encode(&location));
        Ok(())
    })?;
    convert(shared, V1_CHECKPOINT, |key, bytes, batch| {
        let chat = layout::parse_chat(key)
            .ok_or_else(|| shared.corrupt_msg("a checkpoint key of format 1 is malformed"))?;
        let old: V1Checkpoint =
            codec::decode(bytes).map_err(|e| shared.corrupt("checkpoint", e))?;
        let checkpoint = Checkpoint {
            covered_seq: old.covered_seq,
            total: old.total,
            service: old.service,
            users: old.users,
            hours: old.hours,
            days: old.days,
        };
        let location = shared
            .tails
            .append([codec::encode(&checkpoint).as_slice()])?[0];
        batch.insert(
            &layout::chat_prefix(layout::CHECKPOINT, chat),
            codec::encode(&location),
        );
        Ok(())
    })?;
    convert(shared, V1_POSTINGS, |key, bytes, batch| {
        let mut new_key = key.to_vec();
        new_key[0] = layout::POSTINGS;
        let (_, first, _) = postings::parse_key(&new_key)
            .ok_or_else(|| shared.corrupt_msg("a postings key of format 1 is malformed"))?;
        let refs = postings::decode_chunk_v1(first, bytes)
            .map_err(|e| shared.corrupt("postings chunk", e))?;
        let (_, chunk) = postings::encode_chunk(&refs);
        let location = shared.postings_log.append([chunk.as_slice()])?[0];
        let pointer = ChunkPointer {
            location,
            last_time: refs.last().map_or(first, |r| r.time),
        };
        batch.insert(new_key, codec::encode(&pointer));
        Ok(())
    })?;
    convert(shared, V1_PENDING, |key, _, batch| {
        let seq = layout::parse_seq_key(key)
            .ok_or_else(|| shared.corrupt_msg("a pending postings key of format 1 is malformed"))?;
        batch.insert(
            &layout::seq_key(layout::PENDING_POSTINGS, seq),
            codec::encode(&()),
        );
        Ok(())
    })?;
    // Blocks no directory entry referenced were unreachable in format 1 as well.
    let mut orphans = sled::Batch::default();
    let mut orphaned = 0;
    for key in shared.db.scan_prefix([V1_BLOCK]).keys() {
        orphans.remove(key.map_err(|e| shared.io(e))?);
        orphaned += 1;
    }
    orphans.insert(layout::meta_key("format"), &[FORMAT_2]);
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

/// Converts format 2 to 3: settles every profile record into the profiles log.
pub(super) fn from_format_2(shared: &Shared) -> Result<()> {
    let started = Instant::now();
    // The profiles log is appended to before the store's load recovers it: recovered here first.
    shared.profiles_log.recover(shared.profile_locations()?)?;
    let settled = shared.settle_all_profiles()?;
    shared
        .db
        .insert(layout::meta_key("format"), &[FORMAT_3])
        .map_err(|e| shared.io(e))?;
    shared.db.flush().map_err(|e| shared.io(e))?;
    tracing::info!(
        profiles = settled,
        seconds = started.elapsed().as_secs_f64(),
        "converted the data directory to store format 3"
    );
    Ok(())
}

/// Converts format 3 to 4: re-keys every directory run by its first block.
pub(super) fn from_format_3(shared: &Shared) -> Result<()> {
    let started = Instant::now();
    let mut runs = 0usize;
    loop {
        let mut batch = sled::Batch::default();
        let mut step = 0;
        for item in shared.db.scan_prefix([layout::DIRECTORY]) {
            let (key, value) = item.map_err(|e| shared.io(e))?;
            // Runs under a format 4 key were converted by an earlier, interrupted open.
            let Some((chat, run)) = parse_v3_run_key(&key) else {
                continue;
            };
            let blocks: Vec<BlockMeta> =
                codec::decode(&value).map_err(|e| shared.corrupt("directory run", e))?;
            let Some(first) = blocks.first() else {
                return Err(shared.corrupt_msg(format!(
                    "run {run} of the block directory of chat {chat} is empty: restore a backup"
                )));
            };
            batch.insert(
                &layout::block_key(layout::DIRECTORY, chat, first.first),
                value,
            );
            batch.remove(key);
            step += 1;
            if step == STEP {
                break;
            }
        }
        if step == 0 {
            break;
        }
        shared.db.apply_batch(batch).map_err(|e| shared.io(e))?;
        runs += step;
    }
    shared
        .db
        .insert(layout::meta_key("format"), &[FORMAT_4])
        .map_err(|e| shared.io(e))?;
    shared.db.flush().map_err(|e| shared.io(e))?;
    tracing::info!(
        runs,
        seconds = started.elapsed().as_secs_f64(),
        "converted the data directory to store format 4"
    );
    Ok(())
}

/// Converts format 4 to 5: the chat records gain a public username (none yet), in the same
/// sled batch as the new format marker, so that a crash leaves one format or the other. Frames
/// are not rewritten: format 5 frames may end with a column of forum topics, which format 4
/// frames lack (their messages are in no topic).
pub(super) fn from_format_4(shared: &Shared) -> Result<()> {
    let mut batch = sled::Batch::default();
    for item in shared.db.scan_prefix([layout::CHAT_INFO]) {
        let (key, value) = item.map_err(|e| shared.io(e))?;
        let old: ChatInfoV1 = codec::decode(&value).map_err(|e| shared.corrupt("chat info", e))?;
        batch.insert(key, codec::encode(&ChatInfo::from(old)));
    }
    batch.insert(layout::meta_key("format"), &[FORMAT_5]);
    shared.db.apply_batch(batch).map_err(|e| shared.io(e))?;
    shared.db.flush().map_err(|e| shared.io(e))?;
    tracing::info!("converted the data directory to store format 5");
    Ok(())
}

/// `I chat run`: a directory run's key in store format 3 (run `n` held blocks `16n…16n+15`).
fn v3_run_key(chat: ChatId, run: u32) -> [u8; 13] {
    let mut key = [0u8; 13];
    key[..9].copy_from_slice(&layout::chat_prefix(layout::DIRECTORY, chat));
    key[9..13].copy_from_slice(&run.to_be_bytes());
    key
}

/// Splits a [`v3_run_key`] back into chat and run.
fn parse_v3_run_key(key: &[u8]) -> Option<(ChatId, u32)> {
    if key.len() != 13 {
        return None;
    }
    Some((
        layout::parse_chat(key)?,
        u32::from_be_bytes(key[9..13].try_into().ok()?),
    ))
}

/// Turns the moved blocks' entries into directory runs, one chat per batch (a chat's whole
/// directory, a few bytes per block).
fn write_runs(shared: &Shared) -> Result<()> {
    loop {
        let Some(first) = shared
            .db
            .scan_prefix([MOVED])
            .keys()
            .next()
            .transpose()
            .map_err(|e| shared.io(e))?
        else {
            return Ok(());
        };
        let chat = layout::parse_chat(&first)
            .ok_or_else(|| shared.corrupt_msg("a moved block's key is malformed"))?;
        let mut batch = sled::Batch::default();
        let mut metas = Vec::new();
        for item in shared.db.scan_prefix(layout::chat_prefix(MOVED, chat)) {
            let (key, value) = item.map_err(|e| shared.io(e))?;
            metas.push(
                codec::decode::<BlockMeta>(&value).map_err(|e| shared.corrupt("moved block", e))?,
            );
            batch.remove(key);
        }
        for (run, blocks) in metas.chunks(RUN_BLOCKS).enumerate() {
            batch.insert(&v3_run_key(chat, run as u32), codec::encode(blocks));
        }
        shared.db.apply_batch(batch).map_err(|e| shared.io(e))?;
    }
}

/// Converts every record of a format-1 family, [`STEP`] at a time: `each` appends what it moves
/// to a log and puts the new record into the batch; the logs are synced before the batch (which
/// also removes the old records) is applied. The logs' accounts of live bytes are not written
/// here: the first open after the conversion counts them from the index.
fn convert(
    shared: &Shared,
    family: u8,
    mut each: impl FnMut(&[u8], &[u8], &mut sled::Batch) -> Result<()>,
) -> Result<()> {
    loop {
        let step: Vec<(sled::IVec, sled::IVec)> = shared
            .db
            .scan_prefix([family])
            .take(STEP)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| shared.io(e))?;
        if step.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (key, value) in &step {
            each(key, value, &mut batch)?;
            batch.remove(key);
        }
        // Synced before the batch that points at what was appended.
        shared.blocks.sync()?;
        shared.tails.sync()?;
        shared.postings_log.sync()?;
        shared.db.apply_batch(batch).map_err(|e| shared.io(e))?;
    }
}

/// Drops the analyses that earlier builds cached in the index (`A` keys, with an expiry): this
/// build recomputes an analysis instead, which is cheaper than reading it back and leaves no
/// keywords of deleted messages behind. Removed in batches, so memory stays that of one batch;
/// once none are left this is one seek per open.
pub(super) fn drop_retired_cache(shared: &Shared) -> Result<()> {
    let mut dropped = 0u64;
    loop {
        let mut batch = sled::Batch::default();
        let mut keys = 0;
        for key in shared
            .db
            .scan_prefix([layout::RETIRED_CACHE])
            .keys()
            .take(STEP * 16)
        {
            batch.remove(key.map_err(|e| shared.io(e))?);
            keys += 1;
        }
        if keys == 0 {
            break;
        }
        shared.db.apply_batch(batch).map_err(|e| shared.io(e))?;
        dropped += keys;
    }
    if dropped > 0 {
        tracing::info!(dropped, "dropped the analysis cache of an earlier build");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::bench::workload::{Workload, WorkloadSpec};
    use crate::store::{layout, Store, StoreConfig};
    use std::collections::HashMap;

    #[test]
    fn a_conversion_from_format_3_cut_short_goes_on_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let spec = WorkloadSpec {
            messages: 20_000,
            chats: 3,
            ..WorkloadSpec::default()
        };
        {
            let store = Store::open(StoreConfig::new(dir.path())).unwrap();
            store.save_batch(Workload::new(spec).collect()).unwrap();
            // Seals every full block: closing changes no directory run.
            store.flush().unwrap();
            // As a conversion cut short between two steps leaves it: every other run still
            // under its format 3 key (run `n` of its chat), the store marked format 3.
            let db = &store.shared.db;
            let mut runs: HashMap<i64, u32> = HashMap::new();
            let mut batch = sled::Batch::default();
            for (i, item) in db.scan_prefix([layout::DIRECTORY]).enumerate() {
                let (key, value) = item.unwrap();
                let (chat, _) = layout::parse_block_key(&key).unwrap();
                let run = runs.entry(chat).or_default();
                if i % 2 == 0 {
                    batch.remove(key);
                    batch.insert(&super::v3_run_key(chat, *run), value);
                }
                *run += 1;
            }
            assert!(runs.values().sum::<u32>() > 6, "several runs a chat");
            batch.insert(layout::meta_key("format"), &[super::FORMAT_3]);
            db.apply_batch(batch).unwrap();
        }
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let db = &store.shared.db;
        let keys: Vec<_> = db.scan_prefix([layout::DIRECTORY]).keys().collect();
        assert!(keys.iter().all(|k| k.as_ref().unwrap().len() == 21));
        assert_eq!(
            db.get(layout::meta_key("format")).unwrap().as_deref(),
            Some(&[layout::STORE_FORMAT][..])
        );
        let all = store.time_range(i64::MIN, i64::MAX).count();
        assert_eq!(all, 20_000);
        let report = store.verify().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
    }

    #[test]
    fn an_earlier_builds_analysis_cache_is_dropped_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(StoreConfig::new(dir.path())).unwrap();
            let db = &store.shared.db;
            for i in 0..10_000u32 {
                let mut key = vec![layout::RETIRED_CACHE, b'b'];
                key.extend_from_slice(&i.to_be_bytes());
                db.insert(key, &b"an analysis"[..]).unwrap();
            }
            let spec = WorkloadSpec {
                messages: 100,
                ..WorkloadSpec::default()
            };
            store.save_batch(Workload::new(spec).collect()).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let db = &store.shared.db;
        assert_eq!(db.scan_prefix([layout::RETIRED_CACHE]).count(), 0);
        assert_eq!(
            store.global_stats().total_messages,
            100,
            "only the cache goes"
        );
    }
}
