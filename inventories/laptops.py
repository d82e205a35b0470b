# macOS laptops, reached as each laptop's own user (Remote Login), never with a host-wide _sudo: the deploy takes
# sudo for the system parts only (README "macOS laptops"). Home and shell come from the Mac's directory (dscl).
# Replace the example hosts with yours; per-host data overrides group_data/laptops.py.
#   pyinfra inventories/laptops.py deploys/ollama_claude.py
laptops = [
    ("mac-alice.example.internal", {"ssh_user": "alice", "claude_users": ["alice"]}),
]
