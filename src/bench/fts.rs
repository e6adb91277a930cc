//! The search baseline: SQLite FTS5 with the `unicode61` tokenizer (no stemming), as the peers
//! index chat history. The index is a contentless FTS5 table in its own file (so that its size
//! is the index's alone); each message's chat and time are in a second, attached file that
//! queries join on, as an external-content setup would.

use super::search::{BenchQuery, SearchEngine};
use crate::store::{MessageId, Store, Timestamp};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};

/// Messages inserted per transaction while building.
const BATCH: usize = 10_000;

/// FTS5 over the store's messages.
pub struct Fts5Index {
    conn: Connection,
    dir: PathBuf,
}

impl SearchEngine for Fts5Index {
    const NAME: &'static str = "fts5";

    fn build(store: &Store, dir: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(dir.join("fts.db"))?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             ATTACH DATABASE '{}' AS meta;
             PRAGMA meta.journal_mode=WAL; PRAGMA meta.synchronous=NORMAL;
             CREATE VIRTUAL TABLE fts USING fts5(text, content='', tokenize='unicode61');
             CREATE TABLE meta.messages (rowid INTEGER PRIMARY KEY, chat INTEGER NOT NULL,
                                         id INTEGER NOT NULL, time INTEGER NOT NULL);",
            dir.join("meta.db").display()
        ))?;
        let mut rowid = 0i64;
        let mut messages = store.time_range(Timestamp::MIN, Timestamp::MAX).peekable();
        while messages.peek().is_some() {
            let tx = conn.unchecked_transaction()?;
            {
                let mut text =
                    tx.prepare_cached("INSERT INTO fts (rowid, text) VALUES (?1, ?2)")?;
                let mut meta = tx.prepare_cached(
                    "INSERT INTO meta.messages (rowid, chat, id, time) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for message in messages.by_ref().take(BATCH) {
                    let message = message?;
                    if !crate::search::searchable(&message) {
                        continue;
                    }
                    rowid += 1;
                    text.execute(params![rowid, message.text])?;
                    meta.execute(params![
                        rowid,
                        message.chat_id,
                        message.message_id,
                        message.time
                    ])?;
                }
            }
            tx.commit()?;
        }
        conn.execute_batch(
            "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA meta.wal_checkpoint(TRUNCATE);",
        )?;
        Ok(Fts5Index {
            conn,
            dir: dir.to_path_buf(),
        })
    }

    fn bytes(&self) -> anyhow::Result<u64> {
        Ok(std::fs::metadata(self.dir.join("fts.db"))?.len())
    }

    fn run(&mut self, query: &BenchQuery) -> anyhow::Result<Vec<MessageId>> {
        let quoted = |w: &str| format!("\"{}\"", w.replace('"', "\"\""));
        let expression = if query.class == "phrase" {
            quoted(&query.words.join(" "))
        } else {
            query
                .words
                .iter()
                .map(|w| quoted(w))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut statement = self.conn.prepare_cached(
            "SELECT m.id FROM fts JOIN meta.messages m ON m.rowid = fts.rowid
             WHERE fts MATCH ?1 AND m.chat = ?2 AND m.time >= ?3
             ORDER BY bm25(fts) LIMIT 10",
        )?;
        let ids = statement
            .query_map(
                params![
                    expression,
                    query.chat,
                    query.since.unwrap_or(Timestamp::MIN)
                ],
                |row| row.get::<_, MessageId>(0),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ids)
    }
}
