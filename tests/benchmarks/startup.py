"""Whole-process txt2img, load and start-up overhead: ``latentdesk-cli`` beside a diffusers script.

    python -m tests.benchmarks.startup [--reps 3] [--lcm] [--out FILE.json]

Every run is a fresh process timed from outside. The child reports its own phases (the CLI's
``--json`` timings; ``tests.benchmarks.diffusers_txt2img`` prints the same ones): load, encode,
sample, decode. What is left of the whole, ``whole - (load + encode + sample + decode)``, is the
start-up overhead: the interpreter, imports, finding the model, writing the PNG's metadata,
exit. The sides run in turn, rep after rep (the order rotating), so a machine that other jobs
slow down slows every side alike: read the ratios and the medians, and the load average printed
beside them. The engine runs at its default precision (``auto``: on a CPU, bfloat16 where the
CPU measured it faster: the table says which it measured) and in float32; diffusers in float32,
as a diffusers user on a CPU runs it. ``--lcm`` adds the per-image time of LCM at 4 steps
against DPM++ 2M (Karras) at 25 steps, 512², on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.checkpoints import ensure_diffusers_folder, ensure_full_checkpoint

RESULTS = Path(__file__).resolve().parent / "results" / "startup.json"
PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry"
SEED = 42
GOAL_RATIO = 0.40  # issue 14: engine (default precision) / diffusers float32, whole process


@dataclass(frozen=True)
class Side:
    """One command to time: ``engine`` (the CLI) or ``diffusers`` (the reference script)."""

    name: str
    kind: str  # "engine" or "diffusers"
    precision: str  # engine: "auto" or a dtype; diffusers: a dtype
    sampler: str = "euler"
    schedule: str = "normal"
    size: int = 256
    steps: int = 10
    guidance: float = 7.5

    def command(self, ckpt: Path, folder: Path, outdir: Path) -> list[str]:
        if self.kind == "diffusers":
            return [
                sys.executable, "-m", "tests.benchmarks.diffusers_txt2img", str(folder),
                str(outdir), "--size", str(self.size), "--steps", str(self.steps),
                "--precision", self.precision, "--sampler", self.sampler,
                "--guidance", str(self.guidance),
            ]  # fmt: skip
        return [
            *cli_command(), "txt2img", "--ckpt", str(ckpt), "--prompt", PROMPT,
            "--negative-prompt", NEGATIVE, "--H", str(self.size), "--W", str(self.size),
            "--steps", str(self.steps), "--sampler", self.sampler, "--schedule", self.schedule,
            "--scale", str(self.guidance), "--seed", str(SEED), "--precision", self.precision,
            "--outdir", str(outdir), "--json",
        ]  # fmt: skip


def cli_command() -> list[str]:
    """The installed ``latentdesk-cli`` script beside this interpreter (what a user runs), or
    the module when the package is not installed."""
    script = Path(sys.executable).with_name("latentdesk-cli")
    return [str(script)] if script.exists() else [sys.executable, "-m", "engine.cli"]


def run_once(cmd: list[str], cwd: Path) -> dict:
    """Whole wall time, CPU time and peak RSS of one child, with the timings it printed."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=child_env())
        _, status, usage = os.wait4(proc.pid, 0)
        whole = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-3000:]}")
    report = json.loads(stdout[stdout.index("{") :])
    timings = report["timings"]
    # Everything generate() timed (the engine's includes writing the PNG, as the script's does).
    generation = timings["total"]
    return {
        "whole": whole,
        "load": timings["load"],
        "encode": timings["encode"],
        "sample": timings["sample"],
        "decode": timings["decode"],
        "generation": generation,
        "overhead": whole - timings["load"] - generation,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_rss": usage.ru_maxrss * 1024,
        "dtype": report.get("dtype", "?"),
    }


def child_env() -> dict[str, str]:
    # Both sides print nothing but their JSON (diffusers' deprecation notes would go to stderr).
    return dict(os.environ, PYTHONWARNINGS="ignore", TRANSFORMERS_VERBOSITY="error")


def time_argument_error(reps: int, cwd: Path) -> dict[str, list[float]]:
    """Whole-process seconds of commands that stop at the arguments (no torch import)."""
    commands = {
        "txt2img --bogus": [*cli_command(), "txt2img", "--bogus"],
        "txt2img --help": [*cli_command(), "txt2img", "--help"],
    }
    out: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(reps):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, cwd=cwd, check=False)
            out[name].append(time.perf_counter() - start)
    return out


def measure(
    sides: list[Side], reps: int, ckpt: Path, folder: Path, warm_up: bool = True
) -> dict[str, list[dict]]:
    """``warm_up``: one uncounted run of each side first (page cache, the CLI's model hash and
    CPU-precision caches); then ``reps`` rounds, the order rotating each round."""
    runs: dict[str, list[dict]] = {side.name: [] for side in sides}
    cwd = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(tmp)
        for side in sides if warm_up else []:
            whole = run_once(side.command(ckpt, folder, outdir), cwd)["whole"]
            log(f"warm-up {side.name}: {whole:.1f} s")
        for i in range(reps):
            k = i % len(sides)
            for side in sides[k:] + sides[:k]:
                result = run_once(side.command(ckpt, folder, outdir), cwd)
                result["load_average"] = os.getloadavg()[0]
                runs[side.name].append(result)
                log(
                    f"#{i} {side.name}: whole {result['whole']:.1f} s, load {result['load']:.2f}, "
                    f"generation {result['generation']:.1f}, overhead {result['overhead']:.2f} "
                    f"({result['dtype']}; load average {result['load_average']:.1f})"
                )
    return runs


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def pair_ratios(a: list[dict], b: list[dict], key: str) -> list[float]:
    """Round by round: run i of ``a`` over run i of ``b`` (neighbours in time)."""
    return [x[key] / y[key] for x, y in zip(a, b, strict=True)]


def table(runs: dict[str, list[dict]], engine: str, reference: str) -> list[str]:
    e, d = runs[engine], runs[reference]
    lines = [
        f"| measurement (medians) | {engine} | {reference} | ratio (median of pairs) |",
        "|---|---:|---:|---:|",
    ]
    for key, label in (
        ("whole", "whole process (s)"),
        ("overhead", "start-up overhead: whole - (load + generation) (s)"),
        ("load", "load to ready (s)"),
        ("encode", "encode (s)"),
        ("sample", "sample (s)"),
        ("decode", "decode + save (s)"),
    ):
        ratios = pair_ratios(e, d, key)
        lines.append(
            f"| {label} | {med(e, key):.2f} | {med(d, key):.2f} | "
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |"
        )
    return lines


def machine() -> dict:
    from engine.cpu_precision import cpu_model, cpu_precision
    from engine.host import Host

    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = line
            break
    decision = cpu_precision()
    return {
        "cpu": cpu_model(Host()),
        "cores": os.cpu_count(),
        "avx512_bf16": " avx512_bf16" in flags,
        "amx_bf16": " amx_bf16" in flags,
        "engine_cpu_precision": decision.dtype,
        "engine_cpu_precision_reason": decision.reason,
    }


def main_sides(size: int, steps: int) -> list[Side]:
    common = {"size": size, "steps": steps}
    return [
        Side("engine", "engine", "auto", **common),
        Side("diffusers-fp32", "diffusers", "float32", **common),
        Side("engine-fp32", "engine", "float32", **common),
    ]


def lcm_sides() -> list[Side]:
    """LCM at 4 steps without guidance (as LCM models run) against DPM++ 2M Karras, 25 steps."""
    lcm = {"sampler": "lcm", "schedule": "lcm", "steps": 4, "guidance": 1.0, "size": 512}
    dpm = {"sampler": "dpmpp_2m", "schedule": "karras", "steps": 25, "size": 512}
    return [
        Side("engine-lcm4", "engine", "auto", **lcm),
        Side("diffusers-lcm4-fp32", "diffusers", "float32", **lcm),
        Side("engine-dpmpp2m25", "engine", "auto", **dpm),
        Side("diffusers-dpmpp2m25-fp32", "diffusers", "float32", **dpm),
    ]


def report(results: dict) -> None:
    runs, info = results["runs"], results["machine"]
    dtype = runs["engine"][0]["dtype"]
    print(
        f"CPU: {info['cpu']}, {info['cores']} cores, avx512_bf16={info['avx512_bf16']}, "
        f"amx_bf16={info['amx_bf16']}; engine default precision measured here: {dtype} "
        f"({info['engine_cpu_precision_reason']})"
    )
    print("\n".join(table(runs, "engine", "diffusers-fp32")))
    print()
    print("\n".join(table(runs, "engine-fp32", "diffusers-fp32")))
    ratio = statistics.median(pair_ratios(runs["engine"], runs["diffusers-fp32"], "whole"))
    verdict = "meets" if ratio <= GOAL_RATIO else "misses"
    print(f"\nwhole process, engine ({dtype}) / diffusers float32: {ratio:.3f} ({verdict} the "
          f"{GOAL_RATIO:.2f} goal)")  # fmt: skip
    for name, values in results["argument_errors"].items():
        print(f"latentdesk-cli {name}: {statistics.median(values):.2f} s whole process (median)")
    loads = [r["load_average"] for side in runs.values() for r in side]
    print(f"load average during the runs: {min(loads):.1f}-{max(loads):.1f}")


def report_lcm(runs: dict[str, list[dict]]) -> None:
    print("\ntime per image (generation: encode + sample + decode, medians), 512²:")
    for name, side_runs in runs.items():
        print(f"  {name} ({side_runs[0]['dtype']}): {med(side_runs, 'generation'):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="rounds of every side (default: 3)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--lcm", action="store_true", help="add LCM 4 vs DPM++ 2M 25 at 512²")
    parser.add_argument("--lcm-reps", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    ckpt, folder = ensure_full_checkpoint(), ensure_diffusers_folder()
    compile_bytecode()
    started = time.perf_counter()
    results: dict = {"machine": machine(), "load_average_before": os.getloadavg()[0]}
    results["argument_errors"] = time_argument_error(5, Path.cwd())
    results["runs"] = measure(main_sides(args.size, args.steps), args.reps, ckpt, folder)
    save(results, args.out)  # the LCM runs take long: what is measured is kept
    report(results)
    if args.lcm:
        # The main rounds warmed every cache the LCM runs use.
        results["lcm"] = measure(lcm_sides(), args.lcm_reps, ckpt, folder, warm_up=False)
        report_lcm(results["lcm"])
    results["seconds"] = time.perf_counter() - started
    save(results, args.out)
    print(f"({results['seconds'] / 60:.1f} min; JSON in {args.out})")


def compile_bytecode() -> None:
    """Both sides start from compiled bytecode, as after a pip install. Diffusers' modules in
    site-packages have theirs; the engine, installed editable, gets it on its first run, except
    where PYTHONDONTWRITEBYTECODE is set (as on our build machines): then every process compiled
    the engine's modules again, about 0.1 s of its start-up that no user pays."""
    import compileall

    compileall.compile_dir(Path(__file__).resolve().parents[2] / "engine", quiet=1)


def save(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
