"""The command layer: `gpuops` and its commands, one module per command group. Nothing below it imports it."""

from console.cli.entry import main

__all__ = ["main"]
