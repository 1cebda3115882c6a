"""gpuops: a terminal console and ops-as-code for a GPU fleet."""

__version__ = "0.1.0"
