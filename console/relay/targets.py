"""Where each team's cards go: its Feishu group from the catalog, the bot's URL and signing secret from files.

Under the catalog's `alerting.secrets_dir`, per team with a `feishu_group` (and the platform team with
`alerting.platform_feishu_group`): `feishu-<team>.url` (the bot's webhook URL, itself a credential) and,
optionally, `feishu-<team>.secret` (its signing secret). `relay-token`, if present, is the bearer token
Alertmanager must send. Nothing secret is in the catalog, in a log line or in an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from console.catalog.model import Catalog

MAX_SECRET = 16 * 1024  # a URL or a key; a bigger file is not one


class TargetError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    team: str
    group: str  # the Feishu group's name, as people call it: "#llm-oncall"
    url: str
    secret: str

    @property
    def channel(self) -> str:
        return f"feishu:{self.group}"


def read_secret(path: Path, required: bool = True) -> str:
    """The file's text, stripped; "" for a missing optional file. TargetError names the file otherwise."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SECRET + 1)
    except FileNotFoundError:
        if required:
            raise TargetError(f"{path}: missing (the relay reads this secret from it)") from None
        return ""
    except OSError as e:
        raise TargetError(f"{path}: cannot read: {e.strerror}") from None
    if len(data) > MAX_SECRET:
        raise TargetError(f"{path}: over {MAX_SECRET} bytes: not a secret")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise TargetError(f"{path}: byte {e.start}: not UTF-8 text") from None
    if required and not text:
        raise TargetError(f"{path}: empty")
    return text


def feishu_groups(catalog: Catalog) -> dict[str, str]:
    """Team -> Feishu group, for the teams that have one (the platform team's from `alerting`)."""
    groups = {t.name: t.feishu_group for t in catalog.teams if t.feishu_group}
    if catalog.alerting.platform_feishu_group:
        groups[catalog.alerting.platform_team] = catalog.alerting.platform_feishu_group
    return groups


def targets(catalog: Catalog, secrets_dir: Path) -> dict[str, Target]:
    """Every team's target; TargetError lists every missing or unreadable file at once."""
    out: dict[str, Target] = {}
    problems: list[str] = []
    for team, group in feishu_groups(catalog).items():
        try:
            url = read_secret(secrets_dir / f"feishu-{team}.url")
            secret = read_secret(secrets_dir / f"feishu-{team}.secret", required=False)
        except TargetError as e:
            problems.append(str(e))
            continue
        if not url.startswith(("https://", "http://", "file://")):
            problems.append(f"{secrets_dir / f'feishu-{team}.url'}: not an http(s):// or file:// URL")
            continue
        out[team] = Target(team, group, url, secret)
    if problems:
        raise TargetError("; ".join(problems))
    return out
