"""
``ollama_allowed_clients`` enforced in the kernel: an nftables table of ours (``table inet ollama_claude``) that
lets loopback and the allowed networks reach Ollama's port and resets every other connection to it, loaded at boot
by a oneshot unit of ours before ollama.service (which requires it). Works on cgroup v1 and v2 alike, unlike
systemd's IPAddressAllow=.
"""
