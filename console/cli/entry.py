"""The `gpuops` command group: every command, each from the module of its group.

Headless: importing the command layer imports neither Textual nor the kubernetes client (a test proves
it), so `gpuops --help` and the CI commands start fast; each command imports what it needs when it runs.
"""

from __future__ import annotations

import click

from console.cli.catalog import catalog
from console.cli.codegen import build, diff, lint, publish
from console.cli.completion import completion
from console.cli.console import console
from console.cli.cost import cost
from console.cli.demo import demo
from console.cli.doctor import doctor
from console.cli.drill import drill
from console.cli.fleet import snapshot
from console.cli.forecast import forecast
from console.cli.init import init
from console.cli.readiness import readiness_cmd as readiness
from console.cli.relay import relay
from console.cli.runbook import runbook
from console.cli.twin import twin


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="gpuops", prog_name="gpuops")
def main() -> None:
    """gpuops: run a GPU fleet through its biggest traffic events.

    \b
    Start here:
      gpuops demo                      twin + Prometheus + Alertmanager + console
      gpuops catalog check fleet.yaml  validate the catalog
      gpuops twin --kubeconfig kc.yaml run the fleet twin alone
      gpuops snapshot --prometheus URL print the fleet as the console sees it
      gpuops build && gpuops lint      rules and Alertmanager config, checked by promtool and amtool
      gpuops forecast backtest --csv F how the peak forecasters would have sized past days
      gpuops relay                     Alertmanager's webhook to Feishu/Lark cards per team
      gpuops doctor --prometheus URL   what a real cluster lacks for all of the above, and each fix
      gpuops catalog discover -o F     a catalog drafted from a cluster, to start from
      gpuops init DIR                  a team's repository: catalog, dashboards, alerts, runbooks, CI
      gpuops completion bash|zsh|fish  shell completion

    NO_COLOR=1 turns the console's colours off.
    """


COMMANDS = (
    init,
    catalog,
    twin,
    snapshot,
    console,
    demo,
    build,
    lint,
    diff,
    publish,
    runbook,
    drill,
    readiness,
    forecast,
    cost,
    relay,
    doctor,
    completion,
)
for command in COMMANDS:
    main.add_command(command)
