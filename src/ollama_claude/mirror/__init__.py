"""A fleet's artifact mirror: fetch the pinned releases once on the control machine, serve them on the LAN."""
