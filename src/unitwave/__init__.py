"""unitwave: speech and music corpora to discrete units, unit LMs, vocoders and training-ready features."""

__version__ = "0.1.0"
