"""Event readiness: forecast each service's peak, size the fleet with a buffer, verdicts, checklist, actions."""
