"""Grafana annotations of runbook runs and drills (console/runbooks/annotations.py) against the fake Grafana,
which checks each body as Grafana's annotations API documents it."""

from __future__ import annotations

import time

from console.catalog.model import Catalog
from console.runbooks.annotations import Annotations, from_config
from console.sources.grafana import GrafanaClient
from tests.fake_grafana import FakeGrafana


def test_a_run_is_one_annotation_from_its_start_to_its_end_with_its_outcome() -> None:
    with FakeGrafana({"t": "Editor"}) as g:
        notes = Annotations(GrafanaClient(g.url, "t"))
        t0 = int(time.time() * 1000)
        mark = notes.begin("runbook", "pre-scale", "pre-scale (service=asr) by ana on twin", ["context:twin"])
        notes.end(mark, "rolled-back", "verification failed")
        t1 = int(time.time() * 1000)
        assert notes.take_warnings() == []
        assert [(m, p) for m, p, _ in g.state.bodies] == [("POST", "/api/annotations"), ("PATCH", "/api/annotations/1")]
        stored = g.state.annotations[1]
        assert stored["tags"] == ["gpuops", "runbook", "pre-scale", "context:twin", "rolled-back"]
        assert t0 <= stored["time"] <= stored["timeEnd"] <= t1
        assert stored["text"] == "pre-scale (service=asr) by ana on twin — rolled-back: verification failed"


def test_a_grafana_that_fails_or_refuses_costs_a_warning_never_the_run() -> None:
    with FakeGrafana({"viewer": "Viewer", "t": "Editor"}) as g:
        refused = Annotations(GrafanaClient(g.url, "viewer", tries=1))
        assert refused.begin("drill", "x", "drill x", []) is None
        refused.end(None, "passed")
        (warning,) = refused.take_warnings()
        assert "403" in warning and "drill x" in warning
        notes = Annotations(GrafanaClient(g.url, "t", tries=1))
        mark = notes.begin("drill", "x", "drill x", [])
        g.state.fail_next.append(503)
        notes.end(mark, "passed")
        (warning,) = notes.take_warnings()
        assert "503" in warning and "end (passed)" in warning
        assert "timeEnd" in g.state.annotations[1] and g.state.annotations[1]["tags"] == ["gpuops", "drill", "x"]


def test_annotations_need_a_url_and_a_token(catalog: Catalog, tmp_path) -> None:
    no_url = catalog.model_copy(update={"grafana": catalog.grafana.model_copy(update={"url": ""})})
    assert from_config(no_url, {"GRAFANA_TOKEN": "t"}) is None
    assert from_config(catalog, {}) is None
    token = tmp_path / "token"
    token.write_text("from-file\n")
    notes = from_config(no_url, {"GRAFANA_URL": "http://127.0.0.1:1", "GRAFANA_TOKEN_FILE": str(token)})
    assert notes is not None and notes.client.url == "http://127.0.0.1:1"
    assert from_config(catalog, {"GRAFANA_TOKEN_FILE": str(tmp_path / "missing")}) is None
