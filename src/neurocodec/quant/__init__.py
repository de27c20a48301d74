"""quant layer: learned scalar quantizers."""

from .soft_to_hard import QuantizerOutput, SoftToHardQuantizer, anneal_alpha, soft_histogram_entropy

__all__ = ["QuantizerOutput", "SoftToHardQuantizer", "anneal_alpha", "soft_histogram_entropy"]
