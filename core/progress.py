"""Progress reporting and cancellation shared by every core entry point.

Core functions take two optional callables: ``progress(percent: float)`` with percent in
0..100 and ``is_cancelled() -> bool``. The Processing adapters pass
``feedback.setProgress`` and ``feedback.isCanceled``.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import Cancelled

ProgressFn = Callable[[float], None]
CancelFn = Callable[[], bool]


class Progress:
    """Maps work units (days, blocks) of possibly nested steps onto 0..100 %.

    >>> p = Progress(total=4)
    >>> p.advance()  # 25 %
    """

    def __init__(
        self,
        total: float = 1.0,
        progress: ProgressFn | None = None,
        is_cancelled: CancelFn | None = None,
        start: float = 0.0,
        stop: float = 100.0,
    ):
        self.total = max(float(total), 1e-12)
        self.done = 0.0
        self._progress = progress
        self._is_cancelled = is_cancelled
        self.start = start
        self.stop = stop

    @property
    def percent(self) -> float:
        return self.start + (self.stop - self.start) * min(self.done / self.total, 1.0)

    def check(self) -> None:
        """Raise :class:`Cancelled` when the caller asked to stop."""
        if self._is_cancelled is not None and self._is_cancelled():
            raise Cancelled("cancelled by the user")

    def advance(self, units: float = 1.0) -> None:
        """Record finished units, report progress, then check for cancellation."""
        self.done += units
        if self._progress is not None:
            self._progress(self.percent)
        self.check()

    def sub(self, units: float, total: float = 1.0) -> Progress:
        """A child covering the next ``units`` of this one, itself counting to ``total``."""
        a = self.start + (self.stop - self.start) * self.done / self.total
        b = self.start + (self.stop - self.start) * min((self.done + units) / self.total, 1.0)
        self.done += units
        return Progress(total, self._progress, self._is_cancelled, a, b)

    def finish(self) -> None:
        self.done = self.total
        if self._progress is not None:
            self._progress(self.percent)
