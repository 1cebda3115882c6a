"""A fleet of several clusters on loopback: the twin with one Kubernetes API and /metrics per cluster
(`gpuops twin --clusters per-region`), one real Prometheus per cluster with its `cluster` external label, and
optionally a global view, a Prometheus taking every cluster's remote writes. What `gpuops demo --clusters` and
the multi-cluster e2e tests start, and always stop."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from console.atomic import write_atomic
from console.catalog.clusters import per_region
from console.catalog.load import dump_catalog, load_catalog
from console.catalog.model import Catalog, Cluster, GlobalView
from console.procs import alertmanager as am
from console.procs import prometheus as prom
from console.procs import twin as tw
from console.procs.ports import free_port
from console.procs.process import Server, Started


@dataclass(frozen=True)
class RunningClusters:
    twin: dict[str, str]  # each cluster's API and /metrics, by cluster name
    prometheus: dict[str, str]  # each cluster's Prometheus, by cluster name
    global_url: str  # the global view ("" without one)
    kubeconfig: Path
    catalog_path: Path  # the catalog with each cluster's Prometheus (and the global view): what the console reads
    servers: tuple[Server, ...]
    am_url: str = ""  # the Alertmanager the global view's alerts go to ("" without one)


def _written(
    catalog: Catalog, clusters: list[Cluster], proms: dict[str, str], glob: str, forward: str | None, path: Path
) -> Path:
    """The catalog the console reads, with each cluster's Prometheus and the global view (what it holds)."""
    read = [c.model_copy(update={"prometheus": proms[c.name]}) for c in clusters]
    view = GlobalView(prometheus=glob, holds="records" if forward else "all") if glob else None
    written = catalog.model_copy(update={"clusters": read, "global_view": view})
    write_atomic(path, dump_catalog(written, "Written by gpuops for its clusters on loopback: one Prometheus each."))
    return path


def kubeconfig_servers(path: Path) -> dict[str, str]:
    """Each context's API server URL, from a kubeconfig."""
    kc = yaml.safe_load(path.read_text())
    servers = {c["name"]: c["cluster"]["server"] for c in kc.get("clusters") or []}
    return {c["name"]: servers[c["context"]["cluster"]] for c in kc.get("contexts") or []}


@contextmanager
def running_clusters(
    catalog_path: Path,
    workdir: Path,
    *,
    speed: float = 1.0,
    scrape_interval_s: float = 2.0,
    eval_interval_s: float | None = None,
    global_view: bool = True,
    rule_files: Sequence[Path] = (),
    cluster_rules: Mapping[str, Sequence[Path]] | None = None,
    say: Callable[[str], None] = lambda line: None,
    twin_timeout_s: float = 30.0,
    twin_args: tuple[str, ...] = (),
    am_config: dict[str, Any] | None = None,
    forward: str | None = None,
) -> Iterator[RunningClusters]:
    """Start them (raises ServerError naming the one that did not come up); stop them all on exit. The global
    view, when asked for, evaluates `rule_files` over every cluster's series; `cluster_rules` are the rule files
    a named cluster's own Prometheus evaluates (as kube-prometheus runs them in each cluster), whose records reach
    the global view by the remote writes: rules run in one place or the other, not both, or a record would
    reach the global view twice. `twin_timeout_s`: how long the twin may take to build its clusters (a large fleet
    takes a minute); `eval_interval_s`, how often they evaluate their rules (default: as often as they scrape).
    With `am_config` (its routing; `{}` for a null receiver), an Alertmanager takes the global
    view's alerts: they fire from there, where every cluster's series are, and a lost cluster is seen.

    `forward` (a regex over metric names, `queries.records_only_keep`): the clusters send the global view only
    those, and the written catalog says it holds the records alone (`global.holds: records`). The clusters then
    run the rules (`cluster_rules`, their alerts going to the Alertmanager too) and the global view only the
    alerts that need every cluster (`rule_files`: ClusterDown), holding no records of its own."""
    if global_view and rule_files and cluster_rules and not forward:  # each record would reach it twice
        raise ValueError("rules run in the global view or in the clusters, not both")
    catalog = load_catalog(catalog_path)
    clusters = per_region(catalog)
    kubeconfig = workdir / "kubeconfig.yaml"
    with ExitStack() as stack:
        started = Started(stack, say)
        start = started.start
        argv = ("--catalog", str(catalog_path.resolve()), "--speed", f"{speed:g}", "--kubeconfig", str(kubeconfig))
        twin = tw.twin(workdir, *argv, *twin_args, "--clusters", "per-region", port=free_port())
        start(twin, f"the twin's {len(clusters)} clusters", twin_timeout_s)
        apis = kubeconfig_servers(kubeconfig)
        glob = alerts = ""
        if global_view and am_config is not None:
            alerts = start(am.alertmanager(workdir, config=am_config or None), "Alertmanager").base_url
        if global_view:
            glob = start(
                prom.prometheus(
                    workdir, None, scrape_interval_s=scrape_interval_s, rule_files=[str(f) for f in rule_files],
                    receiver=True, name="prometheus-global", alertmanager=alerts.removeprefix("http://") or None,
                    eval_interval_s=eval_interval_s,
                ),
                "the global view (a Prometheus taking remote writes)",
            ).base_url  # fmt: skip
        label = catalog.monitoring.cluster_label
        proms = {}
        for c in clusters:
            proms[c.name] = start(
                prom.prometheus(
                    workdir, urlsplit(apis[c.context]).netloc, scrape_interval_s=scrape_interval_s,
                    external_labels={label: c.name}, remote_write=f"{glob}/api/v1/write" if glob else None,
                    rule_files=[str(f) for f in (cluster_rules or {}).get(c.name, ())], name=f"prometheus-{c.name}",
                    eval_interval_s=eval_interval_s, forward=forward if glob else None,
                    alertmanager=alerts.removeprefix("http://") or None,
                ),
                f"cluster {c.name}'s Prometheus",
            ).base_url  # fmt: skip
        copy = _written(catalog, clusters, proms, glob, forward, workdir / "catalog.yaml")
        try:
            yield RunningClusters(
                {c.name: apis[c.context] for c in clusters},
                proms,
                glob,
                kubeconfig,
                copy,
                tuple(started.servers),
                alerts,
            )
        finally:
            say(started.stopping())
