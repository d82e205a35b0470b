#!/bin/sh
# What users do today on each box, written fairly (as install.sh does it, plus the usual manual steps):
# download the release over the WAN, verify it against sha256sum.txt, unpack to /usr/local, a systemd unit,
# `ollama pull`, Claude Code's native binary from the registry (sha512-checked), a hand-written settings.json.
# Run as root on one host: env OLLAMA_URL VERSION REGISTRY CLAUDE_VERSION MODEL USER_NAME CONTEXT_LENGTH, and
# SERVER_ENV (lab only: KEY=VALUE words for the server, e.g. where the registry stand-in is).
set -eu
arch=amd64
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

archive=ollama-linux-$arch.tar.zst  # Linux releases are .tar.zst only since 0.14
curl -fsSL -o sha256sum.txt "$OLLAMA_URL/v$VERSION/sha256sum.txt"
curl -fsSL -o "$archive" "$OLLAMA_URL/v$VERSION/$archive"
grep " \./$archive\$" sha256sum.txt | sed 's# \./# #' | sha256sum -c --quiet -
rm -rf /usr/local/lib/ollama
zstd -dc "$archive" | tar -xf - -C /usr/local

id ollama >/dev/null 2>&1 || useradd -r -s /bin/false -U -m -d /usr/share/ollama ollama
cat > /etc/systemd/system/ollama.service <<UNIT
[Unit]
Description=Ollama Service
After=network-online.target

[Service]
ExecStart=/usr/local/bin/ollama serve
User=ollama
Group=ollama
Restart=always
RestartSec=3
Environment="PATH=/usr/local/bin:/usr/bin:/bin"
Environment="OLLAMA_CONTEXT_LENGTH=$CONTEXT_LENGTH"
$(for pair in $SERVER_ENV; do echo "Environment=\"$pair\""; done)

[Install]
WantedBy=default.target
UNIT
systemctl daemon-reload
systemctl enable ollama >/dev/null 2>&1
systemctl restart ollama
for _ in $(seq 100); do curl -fs http://127.0.0.1:11434/api/version >/dev/null && break; sleep 0.2; done
ollama pull "$MODEL" >/dev/null

package=@anthropic-ai/claude-code-linux-x64
curl -fsSL -o doc.json "$REGISTRY/$package/$CLAUDE_VERSION"
tarball=$(sed -n 's/.*"tarball": *"\([^"]*\)".*/\1/p' doc.json | head -n1)
integrity=$(sed -n 's/.*"integrity": *"sha512-\([^"]*\)".*/\1/p' doc.json | head -n1)
curl -fsSL -o claude.tgz "$tarball"
[ "$(sha512sum claude.tgz | cut -d" " -f1)" = "$(printf %s "$integrity" | base64 -d | od -An -tx1 | tr -d " \n")" ]
tar -xzf claude.tgz package/claude
install -m 0755 package/claude /usr/local/bin/claude

home=$(getent passwd "$USER_NAME" | cut -d: -f6)
install -d -o "$USER_NAME" -g "$USER_NAME" "$home/.claude"
cat > "$home/.claude/settings.json" <<JSON
{
  "env": {
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:11434",
    "ANTHROPIC_AUTH_TOKEN": "ollama",
    "ANTHROPIC_MODEL": "$MODEL",
    "DISABLE_TELEMETRY": "1"
  },
  "permissions": {"defaultMode": "acceptEdits"}
}
JSON
chown "$USER_NAME:" "$home/.claude/settings.json"
