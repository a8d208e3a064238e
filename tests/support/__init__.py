"""Test support shared by every tier: processes, clients, images and ports for the suites under tests/."""
