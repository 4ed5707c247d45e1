"""Every real-bug case and every healthy program, in the order of the score table."""

from __future__ import annotations

from . import asyncio_cases, lock_cases, thread_cases
from .harness import Case, Healthy
from .healthy import HEALTHY

CASES: list[Case] = [*lock_cases.CASES, *thread_cases.CASES, *asyncio_cases.CASES]
HEALTHY_PROGRAMS: list[Healthy] = list(HEALTHY)
