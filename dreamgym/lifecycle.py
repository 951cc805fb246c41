"""The order rules the batched envs share (`DreamVectorEnv`, `BatchedParallelDreamEnv`): no step or render
before a reset or after close, and one thread at a time inside reset and step."""

from __future__ import annotations

import threading

import gymnasium as gym


class Lifecycle:
    """Mixin: the class sets `bundle` and calls `_init_lifecycle()`; `closed` is Gymnasium's flag (set on
    close), `_live` is True once a reset or `set_state` gave every env a state, until close."""

    closed: bool = False

    def _init_lifecycle(self) -> None:
        self._live = False
        self._busy = threading.Lock()  # held while a thread resets or steps: a second thread is refused

    def _enter(self, what: str) -> None:
        """Take the env for `what` (reset, step); the caller releases `_busy` when done."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(
                f"{self.bundle.id}: {what}() while another thread is resetting or stepping this env; an env is "
                "not shared between threads (give each thread its own env: two envs in two threads give exactly "
                "what each gives alone)"
            )

    def _refuse(self, what: str):
        """The error for `what` on an env that has no state: closed, or not reset yet."""
        if self.closed:
            raise gym.error.ClosedEnvironmentError(
                f"{self.bundle.id}: {what}() after close(); the env's sessions are released, make a new env"
            )
        raise gym.error.ResetNeeded(
            f"{self.bundle.id}: call reset() before {what}(): a dream has no state until a reset draws one from "
            "its real context bank (or set_state() restores one)"
        )
