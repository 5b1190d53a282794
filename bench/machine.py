"""The line every benchmark's figures are recorded under: when, and on what machine."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path


def describe_machine() -> str:
    """``AMD EPYC, 2 cores, Linux 6.1``: the CPU model, cores and kernel."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def heading() -> str:
    """The Markdown heading a run's figures go under in bench/README.md."""
    return f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {describe_machine()}"
