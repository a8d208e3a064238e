"""Blob storage: the encrypted blob store, over object drivers behind one small contract."""
