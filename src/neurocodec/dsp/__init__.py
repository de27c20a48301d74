"""dsp layer."""
