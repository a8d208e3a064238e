"""Pure values and rules of the registry: names, digests, references, media types, ARNs, manifests."""
