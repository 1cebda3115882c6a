"""Starting and stopping the real servers the demo and the tests run: Prometheus, Alertmanager, the twin."""
