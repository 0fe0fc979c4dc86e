"""Artifacts: content-addressed bytes kept out of git (DESIGN.md §3)."""
