"""Connect a catalog to its sources: the one place that builds the clients the console refreshes from."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from console.catalog.model import Catalog, Cluster
from console.fleet.build import ClusterReaders, SnapshotBuilder
from console.fleet.scope import for_catalog, for_global
from console.fleet.snapshot import FleetSnapshot

if TYPE_CHECKING:  # imported where used: the console's first screen does not wait for the kubernetes client
    from console.catalog.yamlpos import CatalogIssue
    from console.cost.gather import Month, Prom
    from console.drills.engine import DrillEvent, DrillOutcome, DrillRunner
    from console.drills.model import Scenario
    from console.readiness.assess import Readiness
    from console.runbooks.engine import Outcome, Progress
    from console.runbooks.journal import Journal, RunSummary
    from console.runbooks.model import Runbook
    from console.runbooks.plan import Plan, Sources
    from console.sources.alertmanager import AlertmanagerSource
    from console.sources.kube import KubeSource
    from console.sources.twin import Timeline


class Connections:
    """Prometheus, the Kubernetes context in use, and Alertmanager, behind the console's `Backend`."""

    def __init__(
        self,
        catalog: Catalog,
        prom_url: str,
        kubeconfig: str | None,
        context: str | None,
        am_url: str | None = None,
        *,
        prefetch: bool = False,
        runbooks_dir: str | Path = "runbooks",
        journal: str | Path | None = None,
        drill_journal: str | Path | None = None,
        relay_url: str | None = None,
    ):
        from console.sources.prometheus import PrometheusSource

        self.catalog = catalog
        self.prom_url, self.am_url, self.kubeconfig = prom_url, am_url, kubeconfig
        self.runbooks_dir, self.journal_path = Path(runbooks_dir), Path(journal) if journal else None
        self.drill_journal_path = Path(drill_journal) if drill_journal else None
        self._cost_prom: Prom | None = None  # for cost reports
        self.drill_runner: DrillRunner | None = None  # the drill running now, if any (its stop_requested stops it)
        # Files the views read on every refresh, parsed again only when one changed: name -> (stamp, value).
        self._memo: dict[str, tuple[Stamp, Any]] = {}
        self._lock = threading.Lock()
        self._first: Future[FleetSnapshot] | None = None
        self._cluster_kube: dict[str, KubeSource] = {}  # each cluster's API, when the fleet is read by cluster
        self._cluster_am: dict[str, AlertmanagerSource] = {}  # each cluster's own Alertmanager, where it has one
        self.alertmanager: AlertmanagerSource | None = None
        if am_url:
            from console.sources.alertmanager import AlertmanagerSource

            self.alertmanager = AlertmanagerSource(am_url)
        relay = None
        if relay_url:  # which alerts reached a chat: the Alerts view's "notified" column
            from console.sources.relay import RelaySource

            relay = RelaySource(relay_url)
        self._known: list[str] = []
        self._read = read = catalog.read_clusters()  # the clusters read one by one (none: the fleet as one)
        if read:  # cluster by cluster: the global view's URL (else --prometheus, else the first's) for the rest
            view = catalog.global_view
            self.prom_url = prom_url = view.prometheus if view else prom_url or read[0].prometheus
        prom = PrometheusSource(prom_url, rewrite=for_global(catalog) if read else for_catalog(catalog))
        self.builder = SnapshotBuilder(
            catalog,
            prom,
            None,
            self.alertmanager,
            notified=relay,
            clusters=tuple(self._readers(read)),
            cluster_label=catalog.monitoring.cluster_label,
        )
        current = None
        if kubeconfig:  # its contexts from the file itself: the Kubernetes client is not loaded yet
            from console.sources.kubeconfig import contexts

            self._known, current = contexts(kubeconfig)
        self.context = self._first_context(kubeconfig, context, current)
        self._kube_loaded = threading.Event()
        self._kube_started = threading.Lock()
        self._kube_error: BaseException | None = None
        if prefetch:
            # The first refresh reads Prometheus and Alertmanager only, started now; the Kubernetes client (0.3 s
            # of imports, which would slow the UI's own beside it) loads once that refresh is handed over, and
            # its API (HPA floors, each cluster's lists) joins from the second.
            self.prefetch()
        else:
            self._kube_ready()

    def _first_context(self, kubeconfig: str | None, context: str | None, current: str | None) -> str:
        """The context asked for, else `all` when the fleet is read by cluster, else the kubeconfig's current."""
        by_cluster = bool(self._read)
        if not kubeconfig:
            return context or ("all" if by_cluster else "(none)")
        chosen = context or ("all" if by_cluster else current or self._known[0])
        if chosen not in self.contexts():
            raise ValueError(f"context {chosen!r} is not in {kubeconfig} (known: {', '.join(self.contexts())})")
        return chosen

    def _load_kube(self) -> None:
        """Each cluster's API (when the fleet is read by cluster) and the context's, into the builder."""
        try:
            if self._read:
                kube = {c.name: self._kube(c.context) for c in self._read if c.context in self._known}
                self._cluster_kube = kube
                self.builder.clusters = tuple(replace(r, kube=kube.get(r.name)) for r in self.builder.clusters)
            if self.kubeconfig:
                self.builder.kube = self._context_kube(self.context)
        except Exception as e:  # the client refused the kubeconfig: on the banner, and raised where it is asked for
            self._kube_error = e
            self.builder.failed("kubernetes", e)
        finally:
            self._kube_loaded.set()

    def _start_kube(self) -> None:
        """Load the Kubernetes client in the background, once."""
        if self._kube_started.acquire(blocking=False):
            threading.Thread(target=self._load_kube, name="kube-client", daemon=True).start()

    def _kube_ready(self) -> None:
        """The Kubernetes client loaded (started now if it was not); raise what it refused."""
        self._start_kube()
        self._kube_loaded.wait()
        if self._kube_error is not None:
            raise self._kube_error

    def _readers(self, read: list[Cluster]) -> Iterable[ClusterReaders]:
        """Each cluster read on its own: its Prometheus unless a global view holds every cluster's series (its
        Kubernetes API joins once the client has loaded)."""
        from console.sources.prometheus import PrometheusSource

        for c in read:
            prom = own = None
            if self.catalog.global_view is None:
                prom = PrometheusSource(c.prometheus, rewrite=for_catalog(self.catalog))
            elif c.prometheus:  # beside the global view: where its drill-downs read the raw series
                own = PrometheusSource(c.prometheus, rewrite=for_catalog(self.catalog))
            if c.alertmanager:
                from console.sources.alertmanager import AlertmanagerSource

                self._cluster_am[c.name] = AlertmanagerSource(c.alertmanager)
            yield ClusterReaders(c.name, frozenset(c.regions), prom, alertmanager=self._cluster_am.get(c.name), own=own)

    def _context_kube(self, context: str) -> KubeSource | None:
        """The context's API: with the fleet read by cluster, the one its cluster's reader holds."""
        if not self._read:
            return self._kube(context)
        owner = self.cluster(self._acting(context))
        return self._cluster_kube.get(owner.name) if owner else None

    def _acting(self, context: str) -> str:
        """`context`, or for `all` the first cluster's that the kubeconfig has (a change still goes to the cluster
        its target lives in)."""
        if context != "all" or not self._read:
            return context
        known = set(self._known)
        return next((c.context for c in self._read if c.context in known), context)

    def prefetch(self) -> None:
        """Start the first refresh now, so it runs while the console's UI loads."""
        first: Future[FleetSnapshot] = Future()

        def run() -> None:
            try:
                with self._lock:
                    first.set_result(self.builder.build())
            except BaseException as e:  # handed to whoever asks for the snapshot
                first.set_exception(e)

        self._first = first
        threading.Thread(target=run, name="prefetch", daemon=True).start()

    @property
    def kube(self) -> KubeSource | None:
        """The context in use: the builder reads HPAs and pods through it, and it is always a KubeSource here."""
        self._kube_ready()
        return cast("KubeSource | None", self.builder.kube)

    def _kube(self, context: str) -> KubeSource:
        from console.sources.kube import KubeSource

        return KubeSource(self.kubeconfig, context)

    def snapshot(self, detail_pool: tuple[str, str] | None = None, detail_node: str | None = None) -> FleetSnapshot:
        first, self._first = self._first, None
        if first is not None and detail_pool is None and detail_node is None:
            snap = first.result()
            self._start_kube()  # the first refresh is on its way to the screen: the client loads now
            return snap
        self._start_kube()
        with self._lock:
            return self.builder.build(detail_pool, detail_node)

    @property
    def acting_context(self) -> str:
        """The kubeconfig context runbooks and drills act through (`all`: the first cluster's)."""
        return self._acting(self.context)

    def contexts(self) -> list[str]:
        """The kubeconfig's contexts; first `all` (every cluster, merged) when the fleet is read by cluster."""
        return (["all"] if self._read else []) + list(self._known)

    def cluster(self, context: str | None = None) -> Cluster | None:
        ctx = context or self.context
        return next((c for c in self.catalog.clusters if c.context == ctx), None)

    def switch(self, context: str) -> None:
        self._kube_ready()
        known = self.contexts()
        if context not in known:
            raise ValueError(f"unknown context {context!r}; known: {', '.join(known) or 'none'}")
        if self._read:  # every cluster is read anyway: the context scopes the views
            with self._lock:
                self.builder.kube, self.context = self._context_kube(context), context
            return
        kube = self._kube(context)
        with self._lock:  # never in the middle of a refresh
            old, self.builder.kube, self.context = self.kube, kube, context
        if old is not None:
            old.close()

    def silence(
        self, matchers: dict[str, str], duration: timedelta, created_by: str, comment: str, alertmanager: str = ""
    ) -> str:
        am = self._cluster_am.get(alertmanager) if alertmanager else self.alertmanager
        if am is None:
            where = f"cluster {alertmanager!r} has no Alertmanager" if alertmanager else "no Alertmanager configured"
            raise RuntimeError(f"{where} (--alertmanager, or the catalog's clusters[].alertmanager)")
        return am.create_silence(matchers, duration, created_by, comment)

    # --- runbooks: what the console's Runbooks view calls, each from a worker thread -----------------------
    def _cached(self, name: str, files: Iterable[Path], load: Callable[[], T]) -> T:
        """`load()`, or its last result while none of `files` changed (a file that fails is read again)."""
        now = stamp(files)
        hit = self._memo.get(name)
        if hit is None or hit[0] != now:
            hit = self._memo[name] = (now, load())
        return cast(T, hit[1])

    def runbooks(self) -> dict[str, Runbook]:
        """The runbook files that load, by name, read again when one changed (a broken one is left out:
        see `runbook_problems`)."""
        return self._usable_runbooks()[0]

    def runbook_problems(self) -> list[str]:
        """Each broken runbook file's `file:line: field: message` lines."""
        return [str(i) for i in self._usable_runbooks()[1]]

    def _usable_runbooks(self) -> tuple[dict[str, Runbook], list[CatalogIssue]]:
        from console.runbooks import usable_runbooks

        folder = self.runbooks_dir
        return self._cached("runbooks", folder.glob("*.yaml"), lambda: usable_runbooks(folder))

    def journal(self) -> Journal:
        from console.runbooks.journal import Journal, default_path

        return Journal(self.journal_path or default_path())

    def plan_runbook(self, name: str, given: dict[str, str]) -> Plan:
        """Resolve the parameters (ParameterError lists every problem) and plan: reads, never writes."""
        from console.runbooks.params import resolve
        from console.runbooks.plan import make_plan

        rb = self.runbooks()[name]
        values = resolve(rb, self.catalog, given)
        src = runbook_sources(self.catalog, self.prom_url, self.kubeconfig, self.acting_context, self.am_url)
        try:
            return make_plan(rb, values, src)
        finally:
            src.close()

    def run_plan(
        self, plan: Plan, operator: str, progress: Callable[[Progress], None], approve: Callable[[str], bool]
    ) -> Outcome:
        """Run a plan made by `plan_runbook` (raises Refused before any change); blocks until it ends."""
        from console.runbooks.engine import Runner

        src = runbook_sources(self.catalog, self.prom_url, self.kubeconfig, self.acting_context, self.am_url)
        try:
            return Runner(src, self.journal(), operator=operator, progress=progress, approve=approve).execute(plan)
        finally:
            src.close()

    # --- drills: what the console's Drills view calls, each from a worker thread ---------------------------
    def drills(self) -> dict[str, Scenario]:
        """The scenarios by name (raises ScenarioError naming file:line: field); read again only when a
        scenario or runbook file changed, not on every refresh."""
        from console.drills.load import default_folder, load_scenarios

        folder = default_folder(self.runbooks_dir)
        files = [*folder.glob("*.yaml"), *self.runbooks_dir.glob("*.yaml")]
        return self._cached("drills", files, lambda: load_scenarios(folder, self.catalog, self.runbooks()))

    def drill_records(self) -> list[dict[str, Any]]:
        """The drill journal's records, parsed again only when the file grew or changed."""
        journal = self.drill_journal()
        if not journal.path.exists():
            return []
        return self._cached("drill_records", [journal.path], lambda: journal.records(verify=False))

    def drill_journal(self) -> Journal:
        from console.drills.load import default_journal
        from console.runbooks.journal import Journal

        return Journal(self.drill_journal_path or default_journal())

    def readiness(
        self,
        event: str | None,
        snapshot: FleetSnapshot | None = None,
        say: Callable[[str], None] = lambda _: None,
        schema: Path | None = None,
        method: str = "peak-ensemble",
    ) -> Readiness:
        """An event's readiness against `snapshot` (a fresh one if None);
        event None: the one running or next on the fleet's clock, else the last. Blocks for seconds."""
        import time

        from console.catalog.model import next_event
        from console.codegen.schema import DEFAULT_SCHEMA
        from console.readiness.assess import assess
        from console.readiness.demand import FORECASTERS
        from console.readiness.gather import gather

        src = runbook_sources(self.catalog, self.prom_url, self.kubeconfig, self.acting_context, self.am_url)
        try:
            timeline = self.timeline()
            if event:
                ev = self.catalog.event(event)
            else:
                found = next_event(self.catalog.events, timeline.sim_at(time.time()))
                if not found and not self.catalog.events:
                    raise ValueError("the catalog has no events")
                ev = found[0] if found else max(self.catalog.events, key=lambda e: e.end)
            inputs = gather(
                self.catalog, ev, src, snapshot or self.snapshot(), runbooks=set(self.runbooks()),
                drill_records=self.drill_records(), schema=schema or DEFAULT_SCHEMA, timeline=timeline, say=say,
            )  # fmt: skip
            say(
                f"forecasting {sum(len(self.catalog.service(n).regions) for n in ev.services)} service x region peaks …"
            )
            return assess(self.catalog, ev, inputs, FORECASTERS[method])
        finally:
            src.close()

    def costs(self) -> Month:
        """The month to date on the fleet's clock. Blocks for a second or more."""
        from console.cost.gather import read_month
        from console.sources.prometheus import PrometheusSource

        if self._cost_prom is None:  # its own client: a month's range queries outlast a refresh's timeout
            view = self.catalog.global_view
            if self._read and (view is None or view.holds == "records"):  # each pod's series: its cluster's own
                from console.fleet.fanout import EachCluster

                own = {c.name: c.prometheus for c in self._read if c.prometheus}
                self._cost_prom = EachCluster(
                    {n: PrometheusSource(u, timeout_s=30, rewrite=for_catalog(self.catalog)) for n, u in own.items()}
                )
            else:
                self._cost_prom = PrometheusSource(self.prom_url, timeout_s=30, rewrite=for_catalog(self.catalog))
        return read_month(self._cost_prom, self.catalog, self.timeline())

    def pool_trend(self) -> dict[str, list[tuple[float, float]]]:
        """Each pool's utilisation over the last hour from Prometheus (the sparklines' first bars)."""
        import time

        from console.fleet.history import pool_util_past
        from console.sources.prometheus import PrometheusSource

        # Its own client, as costs() has: the refresh's source counts its requests per refresh, and this one
        # runs beside the first refresh.
        return pool_util_past(PrometheusSource(self.prom_url, rewrite=for_catalog(self.catalog)), time.time())

    def timeline(self) -> Timeline:
        """The fleet's clock: the twin's (its speed changes and jumps) when the context is the twin, else
        real time. Asked each time: a drill or an operator may have moved the twin's clock since."""
        from console.sources.twin import REAL_TIME, timeline_for

        try:
            kube = self.kube
        except Exception:  # the client refused the kubeconfig (the banner says so): the machine's clock
            return REAL_TIME
        return timeline_for(self.acting_context, kube.api_client.configuration.host) if kube else REAL_TIME

    def run_drill(
        self, name: str, operator: str, on_event: Callable[[DrillEvent], None], ask: Callable[[str], bool]
    ) -> DrillOutcome:
        """Run a scenario on the current context at the twin's own speed (its rules were built for it);
        raises DrillRefused before anything is injected. Blocks until the drill ends."""
        from console.drills.engine import DrillRunner
        from console.sources.twin import twin_for_context

        sc = self.drills()[name]
        src = runbook_sources(self.catalog, self.prom_url, self.kubeconfig, self.acting_context, self.am_url)
        twin = twin_for_context(self.acting_context, src.kube.api_client.configuration.host)
        try:
            runner = DrillRunner(
                sc, self.runbooks(), src, self.drill_journal(), self.journal(),
                twin=twin, operator=operator, on_event=on_event, ask=ask,
            )  # fmt: skip
            self.drill_runner = runner
            runner.preflight(self.acting_context, self.acting_context in sc.safe_on)
            return runner.run()
        finally:
            self.drill_runner = None
            src.close()
            if twin:
                twin.close()

    def stop_drill(self) -> bool:
        runner = self.drill_runner
        if runner is None:
            return False
        runner.stop_requested.set()
        return True

    def runs(self) -> list[RunSummary]:
        """The journal's runs (its chain verified), read again when the file changed."""
        from console.runbooks.journal import runs

        journal = self.journal()
        return self._cached("runs", [journal.path], lambda: runs(journal.records()))

    def close(self) -> None:
        self.builder.close()
        for am in (self.alertmanager, *self._cluster_am.values()):
            if am is not None:
                am.close()
        if self._kube_started.locked():
            self._kube_loaded.wait(timeout=30)  # a client still loading: closed once it has
        mine = cast("KubeSource | None", self.builder.kube)
        kubes = {id(k): k for k in (mine, *self._cluster_kube.values()) if k is not None}
        for k in kubes.values():
            k.close()


# A file's identity for a cache: its path, size and modification time (absent files leave no entry).
Stamp = tuple[tuple[str, int, int], ...]
T = TypeVar("T")


def stamp(files: Iterable[Path]) -> Stamp:
    out = []
    for f in sorted(files):
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        out.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(out)


# The sources, connected; with `prefetch=True` the first refresh starts at once (see `Connections.prefetch`).
connect = Connections


def runbook_sources(
    catalog: Catalog, prom_url: str, kubeconfig: str | None, context: str | None, am_url: str | None
) -> Sources:
    """Kubernetes (the context; with the catalog's clusters read one by one, each cluster's API too, so that a
    change is made in the cluster its target lives in), Prometheus (and each cluster's own, where the catalog names
    one, for the checks of its regions) and Alertmanager for a runbook's plan and run."""
    from console.runbooks.annotations import from_config as annotations_from_config
    from console.runbooks.plan import Sources
    from console.sources.alertmanager import AlertmanagerSource
    from console.sources.kube import KubeObjects
    from console.sources.kubeconfig import contexts
    from console.sources.prometheus import PrometheusSource

    kubes = {}
    if kubeconfig and catalog.read_clusters():
        known = set(contexts(kubeconfig)[0])
        kubes = {c.name: KubeObjects(kubeconfig, c.context) for c in catalog.read_clusters() if c.context in known}
    rewrite = for_catalog(catalog)
    return Sources(
        catalog,
        KubeObjects(kubeconfig, context),
        PrometheusSource(prom_url, rewrite=rewrite),
        AlertmanagerSource(am_url) if am_url else None,
        annotations_from_config(catalog),
        kubes,
        {c.name: PrometheusSource(c.prometheus, rewrite=rewrite) for c in catalog.clusters if c.prometheus},
        {c.name: AlertmanagerSource(c.alertmanager) for c in catalog.clusters if c.alertmanager},
    )
