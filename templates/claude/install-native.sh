{# Download the pinned platform package (on the install's own filesystem, not a small /tmp), verify it against
   the registry's sha512, unpack its one native executable into <install_dir>/<version>/, check that it runs and
   reports the pin, and only then switch the stable link. #}
set -e
mkdir -p {{ version_dir|q }}
tmp=$(mktemp -d {{ (install_dir ~ "/.download.XXXXXX")|q }})
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 3 --max-time 900 -o "$tmp/claude.tgz" {{ tarball|q }} || { echo {{ download_failed|q }} >&2; exit 1; }
if command -v sha512sum >/dev/null 2>&1; then sum=$(sha512sum "$tmp/claude.tgz"); else sum=$(shasum -a 512 "$tmp/claude.tgz"); fi
[ "${sum%% *}" = {{ sha512|q }} ] || { echo {{ checksum_failed|q }} >&2; exit 1; }
tar -xzf "$tmp/claude.tgz" -C "$tmp" package/claude
mv -f "$tmp/package/claude" {{ (binary ~ ".partial")|q }}
chmod 0755 {{ (binary ~ ".partial")|q }}
reported=$({{ (binary ~ ".partial")|q }} --version 2>/dev/null | head -n1)
[ "${reported%% *}" = {{ version|q }} ] || { echo {{ version_failed|q }} >&2; exit 1; }
mv -f {{ (binary ~ ".partial")|q }} {{ binary|q }}
{% include "claude/switch-link.sh" %}
