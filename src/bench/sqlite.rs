//! The baseline: the old Python bot's SQLite schema and habits (WAL, synchronous=NORMAL, three
//! single-column indexes, one commit per live message).

use super::engine::Engine;
use crate::store::{ChatId, Message, Timestamp, UserId};
use rusqlite::{params, Connection};
use std::path::Path;

/// SQLite with the old bot's schema.
pub struct SqliteEngine(Connection);

const INSERT: &str =
    "INSERT INTO messages (chat_id, user_id, text, timestamp, user_name, media_id, media_type) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

fn insert(conn: &Connection, m: &Message) -> rusqlite::Result<usize> {
    conn.prepare_cached(INSERT)?.execute(params![
        m.chat_id,
        m.user_id,
        m.text,
        m.time,
        m.sender_name,
        Option::<String>::None,
        m.kind.name(),
    ])
}

/// A row as the old bot read it back.
#[allow(dead_code)]
struct Row {
    chat_id: i64,
    user_id: Option<i64>,
    text: String,
    timestamp: i64,
    user_name: String,
}

fn rows(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Row>> {
    stmt.query_map(params, |r| {
        Ok(Row {
            chat_id: r.get(0)?,
            user_id: r.get(1)?,
            text: r.get(2)?,
            timestamp: r.get(3)?,
            user_name: r.get(4)?,
        })
    })?
    .collect()
}

impl Engine for SqliteEngine {
    const NAME: &'static str = "sqlite";

    fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let conn = Connection::open(dir.join("bot.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS messages (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 chat_id INTEGER, user_id INTEGER, text TEXT, timestamp INTEGER,
                 user_name TEXT, media_id TEXT, media_type TEXT);
             CREATE INDEX IF NOT EXISTS idx_chat ON messages(chat_id);
             CREATE INDEX IF NOT EXISTS idx_time ON messages(timestamp);
             CREATE INDEX IF NOT EXISTS idx_user ON messages(user_id);",
        )?;
        Ok(SqliteEngine(conn))
    }

    fn save(&mut self, message: Message) -> anyhow::Result<()> {
        insert(&self.0, &message)?;
        Ok(())
    }

    fn save_batch(&mut self, messages: Vec<Message>) -> anyhow::Result<()> {
        let tx = self.0.transaction()?;
        for m in &messages {
            insert(&tx, m)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.0.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }

    /// `ORDER BY id`: ids are arrival order, so SQLite walks the chat index backwards instead of
    /// sorting the whole chat by timestamp (the fastest form this schema allows).
    fn recent(&mut self, chat: ChatId, n: usize) -> anyhow::Result<usize> {
        let mut stmt = self.0.prepare_cached(
            "SELECT chat_id, user_id, text, timestamp, user_name FROM messages \
             WHERE chat_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let mut found = rows(&mut stmt, params![chat, n as i64])?;
        found.reverse();
        Ok(found.len())
    }

    fn chat_stats(&mut self, chat: ChatId) -> anyhow::Result<u64> {
        let mut stmt = self.0.prepare_cached(
            "SELECT COUNT(*), COUNT(DISTINCT user_id) FROM messages WHERE chat_id = ?1",
        )?;
        let (total, _users): (i64, i64) =
            stmt.query_row(params![chat], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(total as u64)
    }

    fn global_stats(&mut self) -> anyhow::Result<u64> {
        let mut stmt = self.0.prepare_cached(
            "SELECT COUNT(*), COUNT(DISTINCT chat_id), COUNT(DISTINCT user_id) FROM messages",
        )?;
        let (total, _, _): (i64, i64, i64) =
            stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(total as u64)
    }

    fn user_messages(
        &mut self,
        user: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<usize> {
        let mut stmt = self.0.prepare_cached(
            "SELECT chat_id, user_id, text, timestamp, user_name FROM messages \
             WHERE user_id = ?1 AND timestamp BETWEEN ?2 AND ?3 ORDER BY timestamp",
        )?;
        Ok(rows(&mut stmt, params![user, from, to])?.len())
    }

    /// The old bot's way of reading history in order: the timestamp index, row by row.
    fn scan_all(&mut self) -> anyhow::Result<u64> {
        let mut stmt = self.0.prepare_cached(
            "SELECT chat_id, user_id, text, timestamp, user_name FROM messages ORDER BY timestamp",
        )?;
        let mut rows = stmt.query([])?;
        let mut read = 0;
        while let Some(row) = rows.next()? {
            let _: (i64, Option<i64>, String, i64, String) = (
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            );
            read += 1;
        }
        Ok(read)
    }

    fn ready_check(&self) -> anyhow::Result<()> {
        self.0
            .query_row("SELECT COUNT(*) FROM messages WHERE rowid = 1", [], |_| {
                Ok(())
            })?;
        Ok(())
    }
}
