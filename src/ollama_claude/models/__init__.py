"""Models: the declared library and cloud models pulled, able to call tools; optional prune of the rest."""
