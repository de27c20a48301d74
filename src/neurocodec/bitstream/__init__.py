"""bitstream layer."""
