"""Runbooks: the files (`runbooks/*.yaml`), their model and loader; the engine builds on these."""

from console.runbooks.load import RunbookError, load_runbook, load_runbooks, usable_runbooks

__all__ = ["RunbookError", "load_runbook", "load_runbooks", "usable_runbooks"]
