//! The inline buttons the bot shows, as a typed enum encoded into and parsed from the callback
//! data in one place. The encoding is the one earlier versions wrote, so that buttons on
//! messages sent before an upgrade keep working.

/// What a pressed button asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Button {
    /// Delete everything of `user` in every chat (after `/forget_me`); only `user` may press it.
    ForgetEverywhere { user: u64 },
    /// Erase a chat's history (after `/purge_chat`); only bot admins may press it.
    PurgeChat { chat: i64 },
    /// Flip one of the settings `/settings` shows.
    Toggle(Toggle),
    /// Show the page of `/search` results from `offset` (the query is the message the results
    /// reply to).
    SearchPage { offset: u32 },
}

/// A setting that a `/settings` button flips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toggle {
    /// The presser's own: reactions to their messages.
    Reactions,
    /// The presser's own: their messages in spontaneous posts.
    Mentions,
    /// The presser's own: their profile (off deletes it).
    Profile,
    /// The chat's (administrators only): whether the bot replies.
    Replies,
    /// The chat's (administrators only): whether the bot posts on its own.
    Spontaneous,
    /// The chat's (administrators only): the daily digest, off or at the default hour.
    Digest,
}

impl Toggle {
    const ALL: [(Toggle, &'static str); 6] = [
        (Toggle::Reactions, "u:reactions"),
        (Toggle::Mentions, "u:mentions"),
        (Toggle::Profile, "u:profile"),
        (Toggle::Replies, "c:replies"),
        (Toggle::Spontaneous, "c:spontaneous"),
        (Toggle::Digest, "c:digest"),
    ];

    fn code(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(toggle, _)| *toggle == self)
            .map(|(_, code)| *code)
            .unwrap_or_default()
    }
}

impl Button {
    /// The callback data (at most 64 bytes, as Telegram allows).
    pub fn data(&self) -> String {
        match self {
            Button::ForgetEverywhere { user } => format!("forget:{user}"),
            Button::PurgeChat { chat } => format!("purge:{chat}"),
            Button::Toggle(toggle) => format!("set:{}", toggle.code()),
            Button::SearchPage { offset } => format!("search:{offset}"),
        }
    }

    /// The button of some callback data; `None` for data this bot never wrote.
    pub fn parse(data: &str) -> Option<Button> {
        let (kind, rest) = data.split_once(':')?;
        match kind {
            "forget" => Some(Button::ForgetEverywhere {
                user: rest.parse().ok()?,
            }),
            "purge" => Some(Button::PurgeChat {
                chat: rest.parse().ok()?,
            }),
            "search" => Some(Button::SearchPage {
                offset: rest.parse().ok()?,
            }),
            "set" => Toggle::ALL
                .iter()
                .find(|(_, code)| *code == rest)
                .map(|(toggle, _)| Button::Toggle(*toggle)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_button_reads_back_and_keeps_the_encoding_of_earlier_versions() {
        let buttons = [
            (Button::ForgetEverywhere { user: 42 }, "forget:42"),
            (Button::PurgeChat { chat: -1001234 }, "purge:-1001234"),
            (Button::Toggle(Toggle::Reactions), "set:u:reactions"),
            (Button::Toggle(Toggle::Mentions), "set:u:mentions"),
            (Button::Toggle(Toggle::Profile), "set:u:profile"),
            (Button::Toggle(Toggle::Replies), "set:c:replies"),
            (Button::Toggle(Toggle::Spontaneous), "set:c:spontaneous"),
            (Button::Toggle(Toggle::Digest), "set:c:digest"),
            (Button::SearchPage { offset: 20 }, "search:20"),
        ];
        for (button, data) in buttons {
            assert_eq!(button.data(), data);
            assert_eq!(Button::parse(data), Some(button));
        }
        assert_eq!(Toggle::ALL.len(), 6, "a new toggle needs a line above");
        for data in [
            "",
            "forget",
            "forget:x",
            "purge:",
            "set:u:colour",
            "set",
            "other:1",
            "search:-1",
        ] {
            assert_eq!(Button::parse(data), None, "{data}");
        }
    }
}
