//! The bot's configuration: `chatkeeper.toml` (see `chatkeeper.example.toml` for every key),
//! overridden by environment variables, so that a systemd unit or a container can change one
//! value without editing the file.
//!
//! Environment overrides are `CHATKEEPER_` plus the key path joined by `__`:
//! `CHATKEEPER_ADMINS="[123, 456]"`, `CHATKEEPER_BOT__REPLY_CHANCE=0.1`,
//! `CHATKEEPER_LLM__ENGINE=gemini`. The API keys can also come from `CHATKEEPER_GEMINI_API_KEY`
//! and `CHATKEEPER_OPENAI_API_KEY`, and the data directory from `CHATKEEPER_DATA_DIR` or
//! `--data-dir`.

use crate::reply::LlmConfig;
use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything `chatkeeper run` can be told.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the store, backups and temporary downloads live.
    pub data_dir: PathBuf,
    /// Telegram user ids allowed to run the admin commands (`/global`, `/health`, `/backup`,
    /// `/import`, `/purge_chat`) and told about repeated errors.
    pub admins: Vec<i64>,
    pub bot: BotConfig,
    pub limits: RateLimits,
    pub quiet_hours: QuietHours,
    pub spontaneous: Spontaneous,
    pub digest: Digest,
    pub retention: Retention,
    pub backup: Backups,
    pub llm: LlmConfig,
    pub metrics: Metrics,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            admins: Vec::new(),
            bot: BotConfig::default(),
            limits: RateLimits::default(),
            quiet_hours: QuietHours::default(),
            spontaneous: Spontaneous::default(),
            digest: Digest::default(),
            retention: Retention::default(),
            backup: Backups::default(),
            llm: LlmConfig::default(),
            metrics: Metrics::default(),
        }
    }
}

/// How the bot presents itself and when it speaks.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BotConfig {
    /// Who the bot is, given to the reply engine with every prompt.
    pub persona: String,
    /// Names it answers to besides its @username (matched as whole words, any case).
    pub names: Vec<String>,
    /// Chance (0–1) of replying to a message that does not address the bot.
    pub reply_chance: f64,
    /// Chance (0–1) of reacting to a message with an emoji.
    pub reaction_chance: f64,
    /// Messages older than this at start-up are recorded but not answered.
    pub backlog_secs: u64,
    /// How many recent messages of the chat go into a prompt.
    pub context_messages: usize,
    /// The chat's time zone as an offset from UTC, for quiet hours and busiest hours.
    pub utc_offset_hours: i32,
    /// The largest export `/import` downloads (the Bot API serves files up to 20 MB).
    pub max_import_bytes: u64,
    /// Backups larger than this are kept on disk instead of being sent to the admin (the Bot API
    /// accepts documents up to 50 MB).
    pub max_backup_document_bytes: u64,
}

impl Default for BotConfig {
    fn default() -> Self {
        BotConfig {
            persona: "Ти — Кіпер, доброзичливий учасник цього чату. Пишеш коротко, по-людськи, \
                      з легким гумором, мовою співрозмовника."
                .into(),
            names: vec!["кіпер".into(), "keeper".into()],
            reply_chance: 0.02,
            reaction_chance: 0.03,
            backlog_secs: 300,
            context_messages: 30,
            utc_offset_hours: 2,
            max_import_bytes: 20 << 20,
            max_backup_document_bytes: 45 << 20,
        }
    }
}

/// Replies allowed per minute, so that a busy chat or one user cannot make the bot spam.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub chat_per_minute: u32,
    pub user_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            chat_per_minute: 6,
            user_per_minute: 3,
        }
    }
}

/// Hours (local, see `bot.utc_offset_hours`) without spontaneous posts or unprompted replies;
/// the bot still answers when addressed. `start == end` turns them off.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct QuietHours {
    pub start: u8,
    pub end: u8,
}

impl Default for QuietHours {
    fn default() -> Self {
        QuietHours { start: 23, end: 8 }
    }
}

impl QuietHours {
    /// Whether local hour `hour` (0–23) is quiet.
    pub fn contains(&self, hour: u8) -> bool {
        if self.start == self.end {
            false
        } else if self.start < self.end {
            (self.start..self.end).contains(&hour)
        } else {
            hour >= self.start || hour < self.end
        }
    }
}

/// Posts the bot makes on its own into chats that are active.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Spontaneous {
    pub enabled: bool,
    /// How often the task looks for a chat to post into (fractions allowed).
    pub check_every_minutes: f64,
    /// The least time between two spontaneous posts in one chat (kept in the store).
    pub cooldown_hours: u64,
    /// A chat qualifies when it had at least `min_messages` within this window.
    pub window_minutes: u64,
    pub min_messages: usize,
}

impl Default for Spontaneous {
    fn default() -> Self {
        Spontaneous {
            enabled: true,
            check_every_minutes: 20.0,
            cooldown_hours: 6,
            window_minutes: 60,
            min_messages: 15,
        }
    }
}

/// The daily digest chats turn on in `/settings` (off by default in every chat): when it is
/// checked for, and what counts as a quiet day.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Digest {
    /// How often the bot looks for chats whose digest hour has come.
    pub check_every_secs: u64,
    /// A day with fewer messages from people is quiet: no digest.
    pub min_messages: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            check_every_secs: 60,
            min_messages: 20,
        }
    }
}

/// How long messages are kept. Off (0) by default: the memory is the point of the bot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub days: u64,
}

/// Scheduled backups of the whole store, rotated.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backups {
    /// 0 turns scheduled backups off (`/backup` and `chatkeeper backup` still work).
    pub every_hours: u64,
    /// How many scheduled backups to keep; older ones are deleted.
    pub keep: usize,
    /// Where they go; relative paths are inside the data directory.
    pub dir: PathBuf,
}

impl Default for Backups {
    fn default() -> Self {
        Backups {
            every_hours: 24,
            keep: 7,
            dir: PathBuf::from("backups"),
        }
    }
}

/// The Prometheus endpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    pub enabled: bool,
    /// Keep it on loopback unless a firewall guards it: the figures are not secret, but not
    /// public either.
    pub address: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            enabled: true,
            address: "127.0.0.1:9898".into(),
        }
    }
}

impl Config {
    /// Loads `file` (when given it must exist; otherwise `chatkeeper.toml` in the working
    /// directory is read if present), then the environment, then `data_dir` if given (the
    /// command line wins over everything).
    pub fn load(file: Option<&Path>, data_dir: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => bail!(
                "the configuration file {} does not exist; copy chatkeeper.example.toml there or \
                 leave --config out to use the defaults",
                path.display()
            ),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            // Optional: a missing default file means the defaults.
            None => figment = figment.merge(Toml::file("chatkeeper.toml")),
        }
        // The command line reads CONFIG and DATA_DIR; the reply engines read the API keys.
        figment = figment.merge(
            Env::prefixed("CHATKEEPER_")
                .ignore(&["CONFIG", "DATA_DIR", "GEMINI_API_KEY", "OPENAI_API_KEY"])
                .split("__"),
        );
        let mut config: Config = figment.extract().map_err(|e| {
            anyhow::anyhow!(
                "the configuration is not valid: {e}. See chatkeeper.example.toml for every key"
            )
        })?;
        if let Some(dir) = data_dir {
            config.data_dir = dir.to_path_buf();
        }
        config.validate()?;
        Ok(config)
    }

    /// Rejects values that cannot work, saying which key to fix.
    fn validate(&self) -> anyhow::Result<()> {
        for (key, chance) in [
            ("bot.reply_chance", self.bot.reply_chance),
            ("bot.reaction_chance", self.bot.reaction_chance),
        ] {
            if !(0.0..=1.0).contains(&chance) {
                bail!("{key} must be between 0 and 1, not {chance}");
            }
        }
        // Bounds keep every interval a valid, sane duration (and refuse NaN and infinity).
        if !(1..=3_600).contains(&self.digest.check_every_secs) {
            bail!("digest.check_every_secs must be between 1 and 3600 (an hour)");
        }
        let minutes = self.spontaneous.check_every_minutes;
        if !(0.001..=10_080.0).contains(&minutes) {
            bail!("spontaneous.check_every_minutes must be between 0.001 and 10080 (a week)");
        }
        for (key, value, max) in [
            (
                "spontaneous.cooldown_hours",
                self.spontaneous.cooldown_hours,
                8_760,
            ),
            (
                "spontaneous.window_minutes",
                self.spontaneous.window_minutes,
                10_080,
            ),
            ("backup.every_hours", self.backup.every_hours, 8_760),
            ("retention.days", self.retention.days, 36_500),
            ("bot.backlog_secs", self.bot.backlog_secs, 31_536_000),
        ] {
            if value > max {
                bail!("{key} must be at most {max}, not {value}");
            }
        }
        if self.backup.keep == 0 {
            bail!("backup.keep must be at least 1 (backup.every_hours = 0 turns backups off)");
        }
        if self.limits.chat_per_minute == 0 || self.limits.user_per_minute == 0 {
            bail!(
                "limits.chat_per_minute and limits.user_per_minute must be at least 1 (to silence \
                 the bot, set bot.reply_chance = 0 or turn replies off per chat in /settings)"
            );
        }
        if !(1..=200).contains(&self.bot.context_messages) {
            bail!("bot.context_messages must be between 1 and 200");
        }
        if let Some(name) = self
            .bot
            .names
            .iter()
            .find(|n| n.trim().is_empty() || n.contains(char::is_whitespace))
        {
            bail!("bot.names must be single words; {name:?} is not");
        }
        if self.quiet_hours.start > 23 || self.quiet_hours.end > 23 {
            bail!("quiet_hours.start and quiet_hours.end are hours from 0 to 23");
        }
        if !(-12..=14).contains(&self.bot.utc_offset_hours) {
            bail!("bot.utc_offset_hours must be between -12 and 14");
        }
        self.metrics
            .address
            .parse::<std::net::SocketAddr>()
            .with_context(|| {
                format!(
                    "metrics.address {:?} is not an address like 127.0.0.1:9898",
                    self.metrics.address
                )
            })?;
        Ok(())
    }

    /// The backup directory, resolved against the data directory.
    pub fn backup_dir(&self) -> PathBuf {
        self.data_dir.join(&self.backup.dir)
    }

    /// The local hour (0–23) at Unix time `time`.
    pub fn local_hour(&self, time: i64) -> u8 {
        let local = time + self.utc_offset_secs();
        (local.rem_euclid(86_400) / 3600) as u8
    }

    /// The bot's time zone (`bot.utc_offset_hours`) in seconds east of UTC: the dates it shows
    /// are local.
    pub fn utc_offset_secs(&self) -> i64 {
        i64::from(self.bot.utc_offset_hours) * 3_600
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_wrap_around_midnight() {
        let night = QuietHours { start: 23, end: 8 };
        assert!(night.contains(23) && night.contains(0) && night.contains(7));
        assert!(!night.contains(8) && !night.contains(22));
        let day = QuietHours { start: 9, end: 17 };
        assert!(day.contains(9) && !day.contains(17) && !day.contains(3));
        assert!(!QuietHours { start: 5, end: 5 }.contains(5));
    }

    /// The committed example documents exactly the defaults (so neither can drift).
    #[test]
    fn the_example_file_holds_the_defaults() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/chatkeeper.example.toml");
        let parsed: Config = toml::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            serde_json::to_value(Config::default()).unwrap()
        );
    }

    #[test]
    fn bad_values_name_the_key_to_fix() {
        let mut config = Config::default();
        config.bot.reply_chance = 1.5;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("bot.reply_chance"), "{err}");
        let mut config = Config::default();
        config.metrics.address = "localhost".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("metrics.address"), "{err}");
    }

    #[test]
    fn local_hours_follow_the_offset() {
        let mut config = Config::default();
        config.bot.utc_offset_hours = 2;
        assert_eq!(config.local_hour(22 * 3600), 0);
        config.bot.utc_offset_hours = -5;
        assert_eq!(config.local_hour(3 * 3600), 22);
    }
}
