"""Scripted one-shot answers, injected by tests to play failures the switches cannot."""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Fault:
    path: str  # matches request paths starting with this
    method: str | None = None  # None matches every method
    status: int = 500
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    after: int = 0  # let this many matching requests through first
    expire_tokens: bool = False  # instead of answering, expire every token (the request gets 401)
    params: dict[str, str] = field(default_factory=dict)  # query parameters that must match
    # Instead of `status` and `body`: the real answer with only the first `rows` rows of its
    # list (0: none), as a page answered empty or short once by a flaky server.
    rows: int | None = None

    def matches(self, method: str, path: str, args: Mapping[str, str]) -> bool:
        return (
            path.startswith(self.path)
            and self.method in (None, method)
            and all(args.get(name) == value for name, value in self.params.items())
        )


class FaultQueue:
    """Faults in injection order; the first one matching a request decides what happens to it.

    Not thread-safe on its own: the simulator calls it under its state lock.
    """

    def __init__(self) -> None:
        self._pending: list[Fault] = []

    def add(self, fault: Fault) -> None:
        # A copy, because counting down its after/times must not change the caller's Fault.
        self._pending.append(dataclasses.replace(fault))

    def take(self, method: str, path: str, args: Mapping[str, str]) -> Fault | None:
        """The fault that fires for this request, if any, counting it down."""
        fault = next((f for f in self._pending if f.matches(method, path, args)), None)
        if fault is None:
            return None
        if fault.after > 0:
            fault.after -= 1
            return None
        fault.times -= 1
        if fault.times <= 0:
            self._pending.remove(fault)
        return fault
