"""Noise schedules, the denoiser wrapper and the samplers, as pure functions."""
