"""Reprovisioning after upgrades: what each host ran before (hoststate), `status`, and `rollout` in waves."""
