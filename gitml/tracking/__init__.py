"""Tracking: runs in progress, committing runs to the runs ref, and reading them back."""
