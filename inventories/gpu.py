# Linux GPU boxes. Replace the example hosts with yours; per-host data overrides group_data/gpu.py.
#   pyinfra inventories/gpu.py deploys/ollama_claude.py
gpu = [
    ("gpu-01.example.internal", {"ssh_user": "admin", "_sudo": True, "claude_users": ["alice"]}),
    ("gpu-02.example.internal", {"ssh_user": "admin", "_sudo": True, "claude_users": ["bob"]}),
]
