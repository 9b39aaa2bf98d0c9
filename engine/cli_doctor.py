"""`latentdesk-cli doctor [--json]`: the system report, for a person or a bug report.

Exits 0 whenever the report was made, problems or not: on a GPU server used only through the
CLI, "no display" is a fact, not a failure. Scripts read ``problems`` in the JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_doctor_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this machine: torch and GPU, precision, display, folders, models",
        description="Report what Latentdesk finds on this machine, and how to fix problems.",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--output-dir", type=Path, default=None, help="gallery folder to check")


def run_doctor(args: argparse.Namespace) -> int:
    from engine.doctor import build_report
    from engine.doctor_text import format_report

    report = build_report(output_dir=args.output_dir)
    print(json.dumps(report, indent=2) if args.json else format_report(report), flush=True)
    return 0
