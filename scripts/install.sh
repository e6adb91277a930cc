#!/usr/bin/env bash
# Installs chatkeeper as a systemd service on this machine (run as root from the repository):
# builds the release binary, creates the `chatkeeper` system user, puts the configuration in
# /etc/chatkeeper and the unit in /etc/systemd/system. Safe to run again to upgrade: existing
# configuration and data are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
    echo "run as root (sudo $0)" >&2
    exit 1
fi

cargo build --release --locked --no-default-features
install -m 0755 target/release/chatkeeper /usr/local/bin/chatkeeper

if ! id chatkeeper >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/chatkeeper --shell /usr/sbin/nologin chatkeeper
fi

install -d -m 0750 -o root -g chatkeeper /etc/chatkeeper
if [[ ! -e /etc/chatkeeper/chatkeeper.toml ]]; then
    install -m 0640 -o root -g chatkeeper chatkeeper.example.toml /etc/chatkeeper/chatkeeper.toml
fi
if [[ ! -e /etc/chatkeeper/env ]]; then
    install -m 0640 -o root -g chatkeeper /dev/null /etc/chatkeeper/env
    echo "TELOXIDE_TOKEN=" >/etc/chatkeeper/env
fi

install -m 0644 scripts/chatkeeper.service /etc/systemd/system/chatkeeper.service
systemctl daemon-reload
systemctl enable chatkeeper.service

if grep -q '^TELOXIDE_TOKEN=$' /etc/chatkeeper/env; then
    echo "Now put the bot token from @BotFather into /etc/chatkeeper/env (TELOXIDE_TOKEN=...),"
    echo "add your Telegram user id to admins in /etc/chatkeeper/chatkeeper.toml, then:"
    echo "    systemctl start chatkeeper && journalctl -u chatkeeper -f"
else
    systemctl restart chatkeeper.service
    echo "chatkeeper restarted; logs: journalctl -u chatkeeper -f"
fi
