"""entropy layer."""
