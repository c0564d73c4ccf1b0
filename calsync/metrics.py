"""calsync's counters: a small thread-safe registry, rendered in Prometheus' text format.

Minimal on purpose (issue 12 needed counters before the operator view of issue 11 exists): a
`Counter` has a name, a help text and optional labels; `REGISTRY.render()` gives the text
exposition format (https://prometheus.io/docs/instrumenting/exposition_formats/). Counters
only go up and live as long as the process.

Push notifications (push.py) count here: `calsync_push_notifications_received_total` (every
POST to the listener), `..._refused_total{reason}` (unknown channel, wrong token, wrong
resource, malformed), `..._acted_total` (a sync was triggered or queued); channels opened,
renewed and stopped; Google's throttles and every Calendar request the budget let through.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Counter:
    """A monotonically increasing count, per combination of label values."""

    def __init__(self, name: str, help_text: str, labels: Iterable[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labels = tuple(labels)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(str(labels.get(name, "")) for name in self.labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        """The count for these label values; without labels, the sum over all of them."""
        with self._lock:
            if not labels:
                return sum(self._values.values())
            key = tuple(str(labels.get(name, "")) for name in self.labels)
            return self._values.get(key, 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items()) or [((("",) * len(self.labels)), 0.0)]
        for key, value in items:
            pairs = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(self.labels, key) if v)
            lines.append(f"{self.name}{{{pairs}}} {value:g}" if pairs else f"{self.name} {value:g}")
        return lines


class Registry:
    def __init__(self) -> None:
        self._counters: dict[str, Counter] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, help_text: str, labels: Iterable[str] = ()) -> Counter:
        """The counter called `name`, made on first use (the same object afterwards)."""
        with self._lock:
            found = self._counters.get(name)
            if found is None:
                found = self._counters[name] = Counter(name, help_text, labels)
            return found

    def render(self) -> str:
        with self._lock:
            counters = sorted(self._counters.values(), key=lambda c: c.name)
        return "\n".join(line for c in counters for line in c.render()) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


REGISTRY = Registry()

notifications_received = REGISTRY.counter(
    "calsync_push_notifications_received_total",
    "Push notifications received by the listener (every POST).")
notifications_refused = REGISTRY.counter(
    "calsync_push_notifications_refused_total",
    "Push notifications refused: unknown channel, wrong token, wrong resource or malformed.",
    ("reason",))
notifications_acted = REGISTRY.counter(
    "calsync_push_notifications_acted_total",
    "Push notifications that triggered (or queued) a sync of their calendar.")
channels_opened = REGISTRY.counter(
    "calsync_push_channels_opened_total", "Notification channels opened (events.watch).")
channels_stopped = REGISTRY.counter(
    "calsync_push_channels_stopped_total", "Notification channels stopped (channels.stop).")
google_throttled = REGISTRY.counter(
    "calsync_google_throttled_total",
    "Google answers saying too many requests (429, 403 rate limits), by limit.", ("scope",))

__all__ = ["Counter", "REGISTRY", "Registry"]
