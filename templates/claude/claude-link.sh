# The fallback chain's Claude link, run by verify as the user (sh): the user's Anthropic key goes to
# verify_anthropic_base_url and nowhere else. Managed settings beat every other source, --settings included,
# so a visible policy file means the key stays unused; the caller hides /etc/claude-code in a private mount
# namespace where it can. The user's own settings are not read (a config dir of its own), and the
# environment is built here, not inherited.
cd "$(dirname "$0")" || exit 1
for f in {% for path in managed_paths %}{{ path|q }} {% endfor %}{% for path in managed_dirs %}{{ path|q }}/*.json {% endfor %}; do
  if [ -e "$f" ]; then
    rm -f .anthropic-key
    echo "managed settings $f apply to every Claude Code run here and could send the key elsewhere; the key was not used"
    exit 3
  fi
done
for name in $(env | awk -F= '/^(ANTHROPIC|CLAUDE)_/ {print $1}'); do unset "$name"; done
key=$(cat .anthropic-key) || exit 1
rm -f .anthropic-key
CLAUDE_CONFIG_DIR="$PWD/.claude-link"
ANTHROPIC_BASE_URL={{ base_url|q }}
ANTHROPIC_API_KEY=$key
unset key
CLAUDE_CODE_MAX_RETRIES=0
DISABLE_AUTOUPDATER=1
DISABLE_TELEMETRY=1
DISABLE_ERROR_REPORTING=1
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
export CLAUDE_CONFIG_DIR ANTHROPIC_BASE_URL ANTHROPIC_API_KEY CLAUDE_CODE_MAX_RETRIES DISABLE_AUTOUPDATER \
  DISABLE_TELEMETRY DISABLE_ERROR_REPORTING CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC
exec {{ timeout_command }} {{ timeout }} {{ claude|q }} -p {{ prompt|q }} --model {{ model|q }} --allowedTools Read,Edit,Bash \
  --dangerously-skip-permissions --output-format stream-json --verbose </dev/null
