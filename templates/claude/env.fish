# Managed by ollama-claude: Claude Code talks to Ollama. Overwritten on every deploy; change group_data instead.
{% for key, value in env.items() %}
set -gx {{ key }} {{ value|fishq }}
{% endfor %}
