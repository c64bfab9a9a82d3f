"""sd-desktop: local latent diffusion image generation and editing."""

__version__ = "0.1.0"
