"""tokenomics: news- and model-driven trading toolkit."""

__version__ = "0.1.0"
