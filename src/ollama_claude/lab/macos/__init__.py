"""The Mac-shaped lab host: a Debian root whose userland answers like macOS (lab part, never product code).

``userland.py`` and the shims in ``bin/`` model what ../shared/reference/macos.md says a deploy meets on a Mac;
see the README section "The Mac-shaped lab host" for what is modelled and what cannot be.
"""
