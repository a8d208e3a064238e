"""Use cases of the registry, one module per concern; both doors call these and nothing below them."""
