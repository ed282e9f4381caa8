"""Diff updates for DataTables: change only the cells that changed, never clear the table.

A ``clear()`` resets the cursor and the scroll position and re-renders every cell, so the
blotter and positions tables are kept in step with the state by key: stale rows are removed,
changed cells updated in place, new rows added, and the rows re-sorted only when rows were
added. The cursor stays on the same row key throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist, RowKey


class SyncedTable(DataTable[Any]):
    """A row-cursor DataTable with keyed rows, fixed widths and :meth:`sync`.

    The cursor row keeps each cell's colour (buy/sell, up/down): the cursor only changes the
    background, or at 16 colours and under NO_COLOR draws the row reversed.
    """

    DEFAULT_CSS = """
    SyncedTable > .datatable--cursor { background: $grid-cursor-bg; text-style: bold; }
    """

    #: (key, title, width) per column; subclasses fill it in.
    COLUMNS_SPEC: tuple[tuple[str, str, int], ...] = ()
    #: Component classes ``<TONE_PREFIX>--up`` etc. carry the cell colours.
    TONE_PREFIX = "table"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False, show_row_labels=False,
                         cursor_foreground_priority="renderable")  # fmt: skip
        self._tones: dict[str, Style] = {}
        self.sync_count = 0

    def on_mount(self) -> None:
        for key, title, width in self.COLUMNS_SPEC:
            self.add_column(title, key=key, width=width)

    # ------------------------------------------------------------------ styles

    def tone(self, name: str) -> Style:
        """The Rich style of component class ``<prefix>--<name>`` (theme variables only)."""
        style = self._tones.get(name)
        if style is None:
            style = self.get_component_rich_style(f"{self.TONE_PREFIX}--{name}", partial=True)
            self._tones[name] = style
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._tones.clear()

    def text(self, value: str, tone: str | None = None, *, right: bool = False) -> Text:
        """A cell: plain text (never markup, so a reject reason cannot inject styles)."""
        return Text(value, style=self.tone(tone) if tone else "", justify="right" if right else "left", no_wrap=True)

    # ------------------------------------------------------------------ diff update

    @property
    def cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except CellDoesNotExist:
            return None
        return row_key.value

    def sync(
        self,
        rows: Mapping[str, Sequence[Any]],
        *,
        sort: Callable[[Any], Any] | None = None,
        reverse: bool = False,
    ) -> bool:
        """Make the table show exactly ``rows`` (row key -> cells); True if anything changed."""
        keep = self.cursor_key
        existing = {k.value for k in self.rows if k.value is not None}  # every row here is added with a key
        wanted = set(rows)
        stale = existing - wanted
        added = [k for k in rows if k not in existing]
        changed = bool(stale or added)
        columns = [c.key for c in self.ordered_columns]
        for key in stale:
            try:
                self.remove_row(key)
            except RowDoesNotExist:
                pass
        for key in wanted & existing:
            new = rows[key]
            try:
                old = self.get_row(key)
            except RowDoesNotExist:
                continue
            for col, before, after in zip(columns, old, new, strict=False):
                if before != after:
                    self.update_cell(key, col, after)
                    changed = True
        for key in added:
            self.add_row(*rows[key], key=key)
        if added and sort is not None and self.row_count > 1:
            self.sort(key=sort, reverse=reverse)
        if changed:
            self.sync_count += 1
        if keep is not None and keep in wanted:
            try:
                index = self.get_row_index(RowKey(keep))
            except RowDoesNotExist:
                index = None
            if index is not None and index != self.cursor_row:
                self.move_cursor(row=index, animate=False, scroll=False)
        return changed
