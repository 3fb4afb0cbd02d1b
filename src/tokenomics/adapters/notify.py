"""Notifications through apprise (Telegram, Slack, Discord, e-mail, ntfy, generic webhooks ...).

Imported only when `notify.urls` is set (the `notify` extra). Secrets stay out of the YAML: a URL
is written with `${VAR}` placeholders, filled from the environment or .env when the notifier is
built, and never logged or printed (only the service name and the URL's index are).

Sending never blocks or fails the caller: `send` queues the messages for one background thread;
a message a service refused is tried once more with the next `send` (the next tick), then dropped
with an error in the log. `flush` waits a bounded time for the queue at the end of a run.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field

from tokenomics import keys
from tokenomics.core.errors import ConfigError

log = logging.getLogger("tokenomics.notify")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
TYPES = ("info", "success", "warning", "failure")


@dataclass
class Message:
    event: str
    title: str
    body: str
    type: str = "info"  # apprise's notify type: info | success | warning | failure
    attempts: int = 0
    pending: set[int] = field(default_factory=set)  # indexes of the targets still to reach


def expand(url: str, index: int = 0) -> str:
    """Fill ${VAR} placeholders from the environment or .env; a missing one is a config error."""
    def value(m: re.Match) -> str:
        key = keys.lookup(m.group(1))
        if key is None:
            raise ConfigError(f"notify.urls[{index}]: {m.group(1)} is not set in the environment or .env")
        return key.reveal()

    return _VAR.sub(value, url)


class Notifier:
    """One apprise target per configured URL, so each is retried and reported on its own."""

    def __init__(self, urls: list[str], timeout: float = 10.0):
        try:
            import apprise
        except ImportError:
            raise ConfigError("notify.urls is set but apprise is not installed",
                              hint="pip install 'tokenomics[notify]'") from None
        self._apprise = apprise
        apprise_log = logging.getLogger("apprise")  # its reasons (HTTP status ...) go to our log files
        apprise_log.propagate = False
        apprise_log.handlers = [h for h in logging.getLogger("tokenomics").handlers]
        apprise_log.setLevel(logging.WARNING)
        self.timeout = timeout
        self.targets: list[tuple[str, object]] = []
        for i, url in enumerate(urls):
            a = apprise.Apprise()
            if not a.add(expand(url, i)):
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                raise ConfigError(f"notify.urls[{i}]: apprise does not understand this URL (scheme {scheme!r})",
                                  hint="see the apprise wiki for the URL of each service")
            self.targets.append((f"{a[0].service_name} #{i}", a))
        self._queue: queue.Queue[Message] = queue.Queue()
        self._retry: list[Message] = []
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self.sent = 0
        self.failed = 0

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.targets]

    # --- sending ---------------------------------------------------------------------------
    def _deliver(self, index: int, msg: Message) -> bool:
        label, target = self.targets[index]
        try:
            return bool(target.notify(body=msg.body, title=msg.title, notify_type=msg.type))
        except Exception as exc:  # a broken plugin must not kill the worker
            log.warning("notification to %s raised %s", label, type(exc).__name__)
            return False

    def _process(self, msg: Message) -> None:
        msg.attempts += 1
        msg.pending = {i for i in msg.pending if not self._deliver(i, msg)}
        if not msg.pending:
            self.sent += 1
            return
        names = ", ".join(self.targets[i][0] for i in sorted(msg.pending))
        if msg.attempts < 2:
            log.warning("notification %r to %s failed; retrying on the next tick", msg.event, names,
                        extra={"event": msg.event})
            with self._lock:
                self._retry.append(msg)
        else:
            self.failed += 1
            log.error("notification %r to %s failed twice; dropped", msg.event, names, extra={"event": msg.event})

    def _run(self) -> None:
        while True:
            msg = self._queue.get()
            try:
                self._process(msg)
            finally:
                self._queue.task_done()

    def send(self, messages: list[Message]) -> None:
        """Queue messages (and last tick's failures, once more); returns at once."""
        with self._lock:
            todo, self._retry = self._retry, []
        for msg in messages:
            msg.pending = set(range(len(self.targets)))
            todo.append(msg)
        if not todo:
            return
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="tokenomics-notify", daemon=True)
            self._worker.start()
        for msg in todo:
            self._queue.put(msg)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait (at most `timeout`, default notify.timeout_seconds) until the queue is empty."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        q = self._queue
        with q.all_tasks_done:
            while q.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("notifications still unsent after %.0f s; giving up on them", self.timeout)
                    return False
                q.all_tasks_done.wait(left)
        with self._lock:
            for msg in self._retry:
                log.error("notification %r not retried: the run is over", msg.event, extra={"event": msg.event})
                self.failed += 1
            self._retry = []
        return True

    def test(self, title: str, body: str) -> list[dict]:
        """Send one message to every target now, synchronously; one row per target."""
        msg = Message("test", title, body, "info")
        return [{"target": label, "ok": self._deliver(i, msg)} for i, (label, _) in enumerate(self.targets)]
