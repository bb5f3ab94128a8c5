"""AHA-WAM's asynchronous runtime: the executor keeps producing chunks from the cached planner context
while the planner refreshes it in the background (release: ``deploy/server/async_runtime.py``, a
priority loop in which action requests go before video prefills, and the deployed policy's
planner reuse across chunks).

One policy call produces one chunk (``chunk_size`` environment steps; the evaluator's ``replan``
must equal it). The planner is refreshed every ``refresh_every`` chunks (paper: 2):

- ``pipelined=False``: the refresh runs at the call that observes the frame, before its chunk;
  the window's chunks are ``0 .. refresh_every - 1`` after the frame.
- ``pipelined=True`` (the asynchronous schedule): the refresh for the frame of call ``m`` is
  started at call ``m`` and adopted at call ``m + refresh_every``; meanwhile the executor goes on
  with the previous context, so each context serves chunks ``refresh_every .. 2 refresh_every - 1``
  after its frame (the window needs ``num_chunks >= 2 refresh_every``). On adoption the action
  history of the new window is rebuilt from the chunks executed since its frame (their actions,
  observations and proprioception are logged), so the executor reads exactly what teacher forcing
  showed it in training: the clean chunks of its window.

Frames are taken at calls, so every chunk starts on the chunk grid of its planner frame (phase
offset 0) unless the frames lag the present: with ``wamzoo eval --frame-lag L`` the planner's frame
is ``L`` steps older than the call while the executor observes the present, the phase offset ``L``
that the horizon-adaptive offsets of training (:mod:`wamzoo_aha_wam.offsets`) prepare it for, as
with a camera stream on a robot.

The first call of an episode refreshes inline (there is no context yet). With ``background=True``
a pipelined refresh runs in a thread that yields to the executor between planner layers (the
release's action-first priority on one device); ``background=False`` computes it inline at its
start. Both give identical actions: when the context is adopted is fixed by the schedule, never by
thread timing (an adoption waits for a refresh that is not finished).

Timing statistics separate the executor's time per chunk from the planner's time per refresh
(:meth:`Runtime.stats`), for the evaluator and ``wamzoo bench latency``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from wamzoo_aha_wam.executor import ActionHistory
from wamzoo_aha_wam.memory import PlannerContext


@dataclass
class Executed:
    """A chunk handed to the robot, with what the executor observed at its start."""

    actions: Tensor           # [B, chunk, A] normalised
    observation: Tensor | None  # [B, 1, V, C, h, w] chunk-start latents
    state: Tensor | None      # [B, 1, S] normalised chunk-start proprio


class PlannerThread:
    """One planner refresh in a background thread that pauses between layers while the executor works.

    The pause is best effort: a planner layer waits at most ``max_pause`` seconds for the executor
    (an executor call that failed half-way never releases it). The thread is not a daemon, so the
    interpreter lets a running refresh finish before it exits.
    """

    def __init__(self, job: Callable[[Callable[[], None]], PlannerContext], executor_busy: threading.Event,
                 turn: threading.Condition, max_pause: float = 1.0):
        self.result: PlannerContext | None = None
        self.error: BaseException | None = None
        self._busy, self._turn, self._max_pause = executor_busy, turn, max_pause
        self._thread = threading.Thread(target=self._run, args=(job,), name="aha-wam-planner")
        self._thread.start()

    def _yield(self) -> None:
        deadline = time.monotonic() + self._max_pause
        with self._turn:
            while self._busy.is_set() and time.monotonic() < deadline:
                self._turn.wait(deadline - time.monotonic())

    def _run(self, job) -> None:
        try:
            with torch.no_grad():
                self.result = job(self._yield)
        except BaseException as exc:  # re-raised in the caller's thread by wait()
            self.error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self) -> PlannerContext:
        self._thread.join()
        if self.error is not None:
            raise RuntimeError("the background planner refresh failed") from self.error
        return self.result


class Runtime:
    """Which planner context the executor reads at each call, and when the planner runs (module doc).

    Args:
        refresh_every: chunks between planner refreshes (paper: 2).
        pipelined: adopt a refresh ``refresh_every`` chunks after its frame (asynchronous schedule).
        background: compute pipelined refreshes in a background thread.
    """

    def __init__(self, refresh_every: int = 2, pipelined: bool = True, background: bool = True):
        if refresh_every < 1:
            raise ValueError(f"refresh_every must be >= 1, got {refresh_every}")
        self.refresh_every, self.pipelined, self.background = refresh_every, pipelined, background
        self._busy = threading.Event()
        self._turn = threading.Condition()
        self.reset()

    def reset(self) -> None:
        """Start an episode: wait for a running refresh, forget contexts, history, log and statistics."""
        pending = getattr(self, "pending", None)
        if isinstance(pending, PlannerThread):
            self._release()
            pending._thread.join()
        self.calls = 0
        self.context: PlannerContext | None = None
        self.window_start = 0
        self.history = ActionHistory()
        self.pending: PlannerThread | PlannerContext | None = None
        self.pending_call = 0
        self.log: deque[Executed] = deque(maxlen=self.refresh_every)
        self.executor_s: list[float] = []
        self.planner_s: list[float] = []
        self.wait_s: list[float] = []
        self._call_start = 0.0
        self._call_planner = 0.0

    def wait_idle(self) -> None:
        """Let a background refresh finish now (its context is still adopted on schedule)."""
        if isinstance(self.pending, PlannerThread):
            self.pending._thread.join()

    # -- one call ---------------------------------------------------------------------------------
    def begin(self, refresh: Callable[[Callable[[], None] | None], PlannerContext],
              rebuild: Callable[[PlannerContext, list[Executed]], ActionHistory]) -> tuple[PlannerContext, int]:
        """Start call ``calls``: adopt or compute the planner context it reads, start a refresh if due.

        ``refresh(between_layers)`` runs the planner on this call's frame; ``rebuild(context, executed)``
        returns the action history of ``context``'s window from the chunks executed since its frame.
        Returns the context and the chunk index within its window.
        """
        self._call_start, self._call_planner = time.perf_counter(), 0.0
        self._busy.set()
        m, k = self.calls, self.refresh_every
        if self.context is None or (not self.pipelined and m % k == 0):
            self._adopt(self._inline(refresh), m, ActionHistory())
        elif self.pipelined and m % k == 0 and self.pending is not None:
            context = self._collect()
            self._adopt(context, self.pending_call, rebuild(context, list(self.log)))
            self.pending = None
        if self.pipelined and m % k == 0 and m > 0:
            self.pending_call = m
            self.pending = (PlannerThread(refresh, self._busy, self._turn) if self.background
                            else self._inline(refresh))
        return self.context, m - self.window_start

    def end(self, executed: Executed) -> None:
        """The call's chunk was produced: log it and stop the executor's clock."""
        self.log.append(executed)
        self.calls += 1
        self.executor_s.append(time.perf_counter() - self._call_start - self._call_planner)
        self._release()

    # -- helpers --------------------------------------------------------------------------------
    def _adopt(self, context: PlannerContext, start: int, history: ActionHistory) -> None:
        self.context, self.window_start, self.history = context, start, history

    def _inline(self, refresh) -> PlannerContext:
        t0 = time.perf_counter()
        context = refresh(None)
        self._call_planner += time.perf_counter() - t0
        self.planner_s.append(context.seconds)
        return context

    def _collect(self) -> PlannerContext:
        if isinstance(self.pending, PlannerContext):
            return self.pending
        t0 = time.perf_counter()
        if not self.pending.done():  # the executor waits: let the planner have the device
            self._release()
        context = self.pending.wait()
        self._busy.set()
        waited = time.perf_counter() - t0
        self._call_planner += waited
        self.wait_s.append(waited)
        self.planner_s.append(context.seconds)
        return context

    def _release(self) -> None:
        with self._turn:
            self._busy.clear()
            self._turn.notify_all()

    # -- statistics -------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Executor time per chunk and planner time per refresh (milliseconds) since the last reset."""
        ms = lambda xs, f: 1e3 * f(xs) if xs else float("nan")  # noqa: E731
        out = {"chunks": len(self.executor_s), "refreshes": len(self.planner_s), "refresh_every": self.refresh_every,
               "executor_ms": ms(self.executor_s, statistics.median),
               "executor_mean_ms": ms(self.executor_s, statistics.fmean),
               "planner_ms": ms(self.planner_s, statistics.median),
               "planner_wait_ms": ms(self.wait_s, statistics.fmean) if self.wait_s else 0.0}
        out["amortised_ms"] = out["executor_mean_ms"] + out["planner_ms"] / self.refresh_every
        out["executor_hz"] = 1e3 / out["executor_mean_ms"] if self.executor_s else float("nan")
        out["planner_hz"] = 1e3 / out["planner_ms"] if self.planner_s else float("nan")
        return out
