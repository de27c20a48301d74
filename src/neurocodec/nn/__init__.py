"""nn layer: network building blocks."""

from .cmrl_blocks import AutoencoderConfig, ComponentAutoencoder

__all__ = ["AutoencoderConfig", "ComponentAutoencoder"]
