# macOS laptops. Replace the example hosts with yours; per-host data overrides group_data/laptops.py.
#   pyinfra inventories/laptops.py deploys/ollama_claude.py
laptops = [
    ("mac-alice.example.internal", {"ssh_user": "alice", "claude_users": [{"name": "alice", "home": "/Users/alice", "shell": "zsh"}]}),
]
