"""The doctor's report as text: what `latentdesk-cli doctor` prints and the Help menu shows.

Problems come first, each with its fix, because that is what the reader came for; the facts
follow, for a bug report.
"""

from __future__ import annotations

from typing import Any

Report = dict[str, Any]


def format_report(report: Report) -> str:
    lines = [f"Latentdesk {report.get('latentdesk') or '(not installed)'} system report", ""]
    lines += _problems(report.get("problems", []))
    lines += _software(report)
    lines += _devices(report.get("torch"))
    lines += _window(report.get("window"))
    lines += _folders(report.get("folders"))
    lines += _models(report.get("models"))
    for note in report.get("notes", []):
        lines.append(f"Note: {note}")
    lines.append(f"(checked in {report.get('seconds', 0):.1f} s)")
    return "\n".join(lines)


def _problems(problems: list[dict[str, str]]) -> list[str]:
    if not problems:
        return ["No problems found.", ""]
    lines = [f"Problems ({len(problems)}):"]
    for n, problem in enumerate(problems, 1):
        lines.append(f"{n}. {problem['what']}")
        fix_lines = problem["fix"].splitlines()
        lines.append(f"   fix: {fix_lines[0]}")
        lines += [f"        {line}" for line in fix_lines[1:]]
    return lines + [""]


def _software(report: Report) -> list[str]:
    python = report["python"]
    system = report.get("system", {})
    torch = report.get("torch") or {}
    build = torch.get("build")
    return [
        f"Python    {python['version']} ({python['executable']})",
        f"torch     {torch.get('version') or 'not importable'}"
        + (f", {build} build" if build else ""),
        f"PySide6   {report['pyside6']['version'] or 'not installed'}",
        f"System    {system.get('distribution') or ''} {system.get('platform', '')}".rstrip(),
        "",
    ]


def _devices(torch: Report | None) -> list[str]:
    if not torch or "devices" not in torch:
        return []
    lines = ["Devices:"]
    for d in torch["devices"]:
        lines += _cpu(d) if d["device"] == "cpu" else _gpu(d)
        lines.append(f"    precision: {d['precision']}: {d['why']}")
    engine = torch["engine_device"]
    note = torch.get("engine_device_note")
    lines.append(f"  The engine runs on {engine}" + (f": {note}" if note else "") + ".")
    driver = torch.get("nvidia_driver")
    if driver:
        cuda = ".".join(map(str, driver["cuda"])) if driver["cuda"] else "?"
        said = driver["error"] or f"driver {driver['version']}, CUDA {cuda}"
        lines.append(f"  nvidia-smi: {said}")
    return lines + [""]


def _cpu(d: Report) -> list[str]:
    lines = [
        f"  cpu      {d['name']}, {d['logical_cores']} logical cores, torch uses "
        f"{d['torch_threads']} threads; bfloat16 instructions (oneDNN): "
        f"{'yes' if d['onednn_bf16_instructions'] else 'no'}"
    ]
    g = d.get("gflops")
    if g:
        conv16 = "not timed" if g["conv_bfloat16"] is None else f"{g['conv_bfloat16']:.0f}"
        when = "from the cache" if d["timings_cached"] else "measured now"
        lines.append(
            f"    GFLOP/s ({when}): matmul 1024² float32 {g['matmul_float32']:.0f}, "
            f"bfloat16 {g['matmul_bfloat16']:.0f}; 3x3 conv float32 {g['conv_float32']:.0f}, "
            f"bfloat16 {conv16}"
        )
        lines.append(f"    (kept in {d['timings_file']}: delete it to measure again)")
    return lines


def _gpu(d: Report) -> list[str]:
    extra = []
    if "memory_bytes" in d:
        extra.append(f"{d['memory_bytes'] / 2**30:.1f} GB")
    if "compute_capability" in d:
        extra.append(f"compute capability {d['compute_capability']}")
    if "arch" in d:
        extra.append(d["arch"])
    return [f"  {d['device']:<8} {d['name']}" + (f", {', '.join(extra)}" if extra else "")]


def _window(window: Report | None) -> list[str]:
    if not window:
        return []
    if window["can_start"]:
        how = window["platform"] + (
            f" (latentdesk sets QT_QPA_PLATFORM={window['set_platform']} to get there)"
            if window["set_platform"]
            else ""
        )
        lines = [f"Window: can start here, on {how}"]
    else:
        lines = ["Window: cannot start here (see problems)"]
    for display in window["displays"]:
        if not display["name"]:
            lines.append(f"  {display['plugin']:<8} {display['detail']}")
            continue
        state = "reachable" if display["reachable"] else "not reachable"
        name = display["name"]
        lines.append(f"  {display['plugin']:<8} display {name}: {state} ({display['detail']})")
    for libs in window["libraries"]:
        missing = ", ".join(libs["missing"]) or "none missing"
        lines.append(f"  {libs['plugin']:<8} plugin libraries: {libs['error'] or missing}")
    return lines + [""]


def _folders(folders: list[Report] | None) -> list[str]:
    if not folders:
        return []
    lines = ["Folders:"]
    for f in folders:
        state = "writable" if f["writable"] else "NOT writable"
        created = "" if f["exists"] else ", created when first needed"
        free = "" if f["free_bytes"] is None else f", {f['free_bytes'] / 1e9:.1f} GB free"
        lines.append(f"  {f['role']:<8} {f['path']} ({state}{free}{created})")
    return lines + [""]


def _models(models: Report | None) -> list[str]:
    if not models:
        return []
    lines = ["Model folders:"]
    for f in models["folders"]:
        where = "" if f["exists"] else " (does not exist)"
        other = f", {f['other_files']} other file(s)" if f.get("other_files") else ""
        lines.append(f"  {f['source']:<8} {f['path']}: {f['models']} model(s){other}{where}")
    if models.get("skipped"):
        lines.append(f"  {models['skipped']} file(s) skipped (not models, or unreadable)")
    return lines + [""]
