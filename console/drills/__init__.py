"""Incident drills: scenario files, the drill engine, its journal and reports."""
