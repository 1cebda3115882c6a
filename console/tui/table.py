"""`KeyedTable`: a DataTable updated by row key, cell by cell, with a filter and a sort that survive
refreshes (the dolphie way: no clear-and-refill, so the cursor stays on its row)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual.widgets import DataTable

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    compact: bool = True  # still shown in the compact (80-column) layout
    numeric: bool = False  # sorts by the first number in the cell
    by_cluster: bool = False  # shown only when the fleet is read cluster by cluster


# The first column of every view whose rows come from one cluster each.
CLUSTER_COLUMN = Column("cluster", "Cluster", by_cluster=True)


Row = tuple[str, dict[str, Any]]  # (key, cells by column key)


def _sig(v: Any) -> tuple[str, str]:
    """What a cell shows, style included: a cell whose colour changes is updated too."""
    if isinstance(v, Text):
        return v.plain, f"{v.style}|{v.spans}"
    return str(v), ""


def _plain(v: Any) -> str:
    return v.plain if isinstance(v, Text) else str(v)


class KeyedTable(DataTable):
    def __init__(self, columns: Sequence[Column], *, id: str | None = None):
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.all_columns = tuple(columns)
        self.compact = False
        self.by_cluster = False
        self.filter_text = ""
        self.sort_key: str | None = None
        self.sort_reverse = False
        self._rows: list[Row] = []
        self._shown: dict[str, dict[str, tuple[str, str]]] = {}

    def on_mount(self) -> None:
        self._add_columns()

    async def _on_idle(self, event: events.Idle) -> None:
        # DataTable measures new rows when idle, but caches each rendered cell by its update count, not by its
        # column's width: a row painted before it was measured stayed cut to the header's width until a cell
        # changed (after a rebuild - a sort, the compact layout - that left the table as wide as before, no
        # resize clears it; a quiet fleet's names never change). A width that changes clears those renders.
        widths = [c.content_width for c in self.columns.values()]
        await super()._on_idle(event)
        if widths != [c.content_width for c in self.columns.values()]:
            self._clear_caches()
            self.refresh()

    @property
    def visible_columns(self) -> tuple[Column, ...]:
        return tuple(
            c for c in self.all_columns if (c.compact or not self.compact) and (self.by_cluster or not c.by_cluster)
        )

    def _add_columns(self) -> None:
        for c in self.visible_columns:
            label = c.label + (" ▼" if self.sort_reverse else " ▲") * (c.key == self.sort_key)
            self.add_column(label, key=c.key)

    def set_columns(self, columns: Sequence[Column]) -> None:
        """A different shape (the pools view's levels): rebuild, the rows come with the next `show`."""
        self.all_columns = tuple(columns)
        self.sort_key, self.sort_reverse = None, False
        self._rebuild(keep_rows=False)

    def set_compact(self, compact: bool, by_cluster: bool | None = None) -> None:
        """The layout: compact (80 columns) or not; with `by_cluster`, whether the Cluster column shows."""
        by_cluster = self.by_cluster if by_cluster is None else by_cluster
        if (compact, by_cluster) != (self.compact, self.by_cluster):
            self.compact, self.by_cluster = compact, by_cluster
            self._rebuild()

    def _rebuild(self, keep_rows: bool = True) -> None:
        selected = self.selected_key
        self.clear(columns=True)
        self._shown.clear()
        self._add_columns()
        if not keep_rows:
            self._rows = []
        self.show(self._rows)
        self._restore(selected)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None

    def _restore(self, key: str | None) -> None:
        if key is not None and key in self._shown:
            self.move_cursor(row=self.get_row_index(key), animate=False)

    def _matches(self, cells: dict[str, Any]) -> bool:
        if not self.filter_text:
            return True
        needle = self.filter_text.lower()
        return any(needle in _plain(cells.get(c.key, "")).lower() for c in self.all_columns)

    def show(self, rows: list[Row]) -> None:
        """Keyed diff: add new rows, update changed cells, remove vanished rows; never clear."""
        self._rows = list(rows)
        cols = self.visible_columns
        wanted = [(k, cells) for k, cells in rows if self._matches(cells)]
        keys = {k for k, _ in wanted}
        selected = self.selected_key
        reorder = False
        for key in [k for k in self._shown if k not in keys]:
            self.remove_row(key)
            del self._shown[key]
        for key, cells in wanted:
            sigs = {c.key: _sig(cells.get(c.key, "")) for c in cols}
            old = self._shown.get(key)
            if old is None:
                self.add_row(*(cells.get(c.key, "") for c in cols), key=key)
                reorder = True
            else:
                for c in cols:
                    if old[c.key] != sigs[c.key]:
                        # DataTable keeps a column's width on an update unless told: a cell that grows
                        # (a "—" that becomes "feishu:#sre-oncall 12s ago") would be cut to the old width.
                        self.update_cell(key, c.key, cells.get(c.key, ""), update_width=True)
                        reorder = reorder or c.key == self.sort_key
            self._shown[key] = sigs
        if reorder:
            self._order(selected, wanted)

    def _order(self, selected: str | None, wanted: list[Row]) -> None:
        if self.sort_key is None:
            self._given_order(wanted)
        else:
            col = next((c for c in self.visible_columns if c.key == self.sort_key), None)
            if col is not None:
                self.sort(col.key, key=lambda v: _sort_value(v, col.numeric), reverse=self.sort_reverse)
        self._restore(selected)

    def _given_order(self, wanted: list[Row]) -> None:
        """Rows in the order `show` got them, by DataTable's public `sort`. Its key sees a row's cells, not its
        key, so each row is known by what it shows; rows that show the same are alike to the eye, in any order."""
        cols = self.visible_columns
        position: dict[tuple[str, ...], int] = {}
        for i, (_, cells) in enumerate(wanted):
            position.setdefault(tuple(_plain(cells.get(c.key, "")) for c in cols), i)
        self.sort(key=lambda shown: position.get(tuple(_plain(v) for v in shown), len(position)))

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        """Sort by a column (again on the same column: reverse it). The order holds through refreshes."""
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_key else False
        self.sort_key, self.sort_reverse = column, reverse
        self._rebuild()

    def cycle_sort(self) -> None:
        keys = [c.key for c in self.visible_columns]
        nxt = keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key in keys else keys[0]
        self.sort_by(nxt, reverse=False)

    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self.show(self._rows)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))


def _sort_value(v: Any, numeric: bool) -> tuple[int, float, str]:
    text = _plain(v).strip()
    if numeric:
        m = _NUMBER.search(text)
        if m:
            return (0, float(m.group()), text)
        return (1, 0.0, text)
    return (0, 0.0, text.lower())
