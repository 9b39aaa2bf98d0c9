"""The built-in demo model: its training data (shapes), training script, and content reader."""
