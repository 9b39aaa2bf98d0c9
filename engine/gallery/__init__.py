"""The gallery's Qt-free side: reading any tool's parameters from image files, and the SQLite
index over the gallery folders (search, stars, incremental updates)."""
