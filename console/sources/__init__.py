"""The only code that talks to the outside: Prometheus, Kubernetes, Alertmanager (and Grafana later).

Each module wraps one system behind a small typed interface; nothing here knows about Textual.
"""
