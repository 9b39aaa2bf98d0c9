"""Prompt text as users write it (A1111 syntax): extra-network tags, emphasis, scheduling.

Torch-free, so the window's token counter and highlighter can use it.
"""
