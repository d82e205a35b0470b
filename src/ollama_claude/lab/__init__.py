"""Lab: a disposable fleet of real Debian hosts (systemd-nspawn + network namespaces) reached over SSH."""
