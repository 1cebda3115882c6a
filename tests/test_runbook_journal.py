"""The run journal: an append-only hash chain that names the line an edit broke; runs as it tells them."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import main
from console.runbooks.journal import Journal, JournalError, find_run, runs


def _journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "state" / "journal.jsonl")
    j.append("r1", "run_start", runbook="pre-scale", operator="ana", host=os.uname().nodename, pid=os.getpid())
    j.append("r1", "change_start", key="1.0", change={"before": 6, "after": 8})
    j.append("r1", "change_done", key="1.0")
    j.append("r1", "run_end", status="succeeded")
    return j


def test_records_chain_and_verify(tmp_path):
    j = _journal(tmp_path)
    recs = j.records()
    assert [r["event"] for r in recs] == ["run_start", "change_start", "change_done", "run_end"]
    assert recs[0]["prev"] == "0" * 64 and all(b["prev"] == a["hash"] for a, b in itertools.pairwise(recs))
    assert oct(j.path.stat().st_mode & 0o777) == "0o600"
    (run,) = runs(recs)
    assert (run.id, run.runbook, run.status) == ("r1", "pre-scale", "succeeded")


@pytest.mark.parametrize(
    ("edit", "line", "field"),
    [
        (lambda lines: lines.__setitem__(1, lines[1].replace('"before": 6', '"before": 7')), 2, "hash"),
        (lambda lines: lines.pop(1), 2, "prev"),
        (lambda lines: lines.insert(3, lines[2]), 4, "prev"),
    ],
    ids=["a value changed", "a record removed", "a record copied in"],
)
def test_a_journal_edited_by_hand_fails_its_chain_check_at_the_line(tmp_path, edit, line, field):
    j = _journal(tmp_path)
    lines = j.path.read_text().splitlines()
    edit(lines)
    j.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalError, match=rf"journal.jsonl:{line}: {field}: "):
        j.records()
    r = CliRunner().invoke(main, ["runbook", "journal", "--verify", "--journal", str(j.path)])
    assert r.exit_code == 1 and f"journal.jsonl:{line}: {field}:" in r.output


def test_appends_from_several_processes_keep_one_chain(tmp_path):
    path = tmp_path / "journal.jsonl"
    code = (
        "import sys; from pathlib import Path; from console.runbooks.journal import Journal\n"
        "j = Journal(Path(sys.argv[1]))\n"
        "for i in range(40): j.append(sys.argv[2], 'tick', i=i)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), f"p{n}"]) for n in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    assert len(Journal(path).records()) == 160  # verifies the chain across interleaved writers


def test_a_run_whose_process_is_gone_reads_as_interrupted(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    j.append("r2", "run_start", runbook="degrade-llm-to-rules", host=os.uname().nodename, pid=dead.pid)
    j.append("r2", "change_start", key="1.0", change={})
    run = find_run(j.records(), "r2")
    assert run is not None and run.status == "interrupted" and str(dead.pid) in run.detail
    j.append("r3", "run_start", runbook="pre-scale", host=os.uname().nodename, pid=os.getpid())
    assert find_run(j.records(), "r3").status == "running"  # type: ignore[union-attr]
    r = CliRunner().invoke(main, ["runbook", "journal", "--journal", str(j.path)])
    assert r.exit_code == 0 and "r2  interrupted" in r.output and "r3  running" in r.output
    assert json.loads(j.path.read_text().splitlines()[0])["run"] == "r2"


def test_a_journal_whose_last_lines_were_deleted_fails_its_check_and_takes_no_more_records(tmp_path):
    j = _journal(tmp_path)
    lines = j.path.read_text().splitlines(keepends=True)
    j.path.write_text("".join(lines[:-1]))  # the run_end gone: without the head file the chain still verifies
    with pytest.raises(JournalError, match=r"journal.jsonl:4: the journal ends here, but its head file says 4"):
        j.records()
    r = CliRunner().invoke(main, ["runbook", "journal", "--verify", "--journal", str(j.path)])
    assert r.exit_code == 1 and "1 removed from the end" in r.output
    with pytest.raises(JournalError, match="nothing more is written"):
        j.append("r2", "run_start")
    assert j.path.read_text() == "".join(lines[:-1])


def test_a_replaced_end_or_a_missing_head_file_fails_and_a_head_one_behind_is_a_crash_not_tampering(tmp_path):
    j = _journal(tmp_path)
    head = j.head_path.read_text()
    assert json.loads(head)["records"] == 4
    # A crash between a record and its head update: the head is one behind; the next append catches up.
    j.append("r2", "run_start")
    j.head_path.write_text(head)
    assert len(j.records()) == 5
    j.append("r2", "run_end", status="succeeded")
    assert json.loads(j.head_path.read_text())["records"] == 6
    j.head_path.unlink()
    with pytest.raises(JournalError, match=r"journal.jsonl.head:1: records, hash: missing"):
        j.records()


def test_rollback_on_a_production_context_wants_its_name_typed_and_changes_nothing_without_it(tmp_path):
    root = Path(__file__).resolve().parents[1]
    fleet = (root / "fleet.yaml").read_text()
    prod = fleet.replace("    production: false\n", "    production: true\n", 1)
    assert prod != fleet
    (tmp_path / "fleet.yaml").write_text(prod)
    j = _journal(tmp_path)
    j.append("r9", "run_start", runbook="pre-scale", operator="ana", host="elsewhere", pid=1, context="twin")
    j.append("r9", "run_end", status="succeeded")
    before = j.path.read_text()
    base = ["runbook", "rollback", "r9", "--catalog", str(tmp_path / "fleet.yaml"), "--journal", str(j.path),
            "--prometheus", "http://127.0.0.1:9"]  # fmt: skip
    r = CliRunner().invoke(main, base)  # CliRunner's stdin is not a terminal: no prompt can be answered
    assert r.exit_code == 2 and "refused: 'twin' is production: pass --confirm-context" in r.output, r.output
    r = CliRunner().invoke(main, [*base, "--confirm-context", "twin-apac"])
    assert r.exit_code == 2 and "refused: 'twin-apac' is not 'twin'; nothing was changed" in r.output, r.output
    assert j.path.read_text() == before


def test_a_change_records_its_cluster_only_when_it_has_one() -> None:
    from console.runbooks.changes import Change, Lock, Target

    across = Change(
        Target("configmap", "team-llm", "llm-chat-routing", "us-east"),
        ("data", "weight.us-east"),
        "100",
        "200",
        Lock("team-llm", "service/llm-chat", "us-east"),
    )
    d = across.as_json()
    assert d["target"]["cluster"] == "us-east" and d["lock"]["cluster"] == "us-east"
    assert Change.from_json(d) == across and "in cluster us-east" in str(across.target)
    # A one-cluster run's records read as they always did, and older records (no cluster) read back.
    plain = Change(Target("configmap", "team-llm", "x"), ("data", "mode"), "normal", "rules", None)
    d = plain.as_json()
    assert "cluster" not in d["target"] and d["lock"] is None
    assert Change.from_json(d) == plain and str(plain.target) == "configmap team-llm/x"
