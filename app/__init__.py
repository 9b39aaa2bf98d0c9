"""Latentdesk desktop application (PySide6)."""
