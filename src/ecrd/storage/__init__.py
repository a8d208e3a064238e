"""Blob storage: content-addressed drivers behind one small Protocol."""
