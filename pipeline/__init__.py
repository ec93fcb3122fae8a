"""normloom's generation pipeline: plain Python, no orchestration."""

__version__ = "0.1.0"
