"""Noise schedules, samplers as pure functions over a denoiser, the denoiser wrappers, seeded noise, and the
sampler registry."""
