"""The real-library corpus: do libraries' own tests behave the same when recorded?

For each library of corpus/libraries.toml: install the pinned wheel into a separate venv
(the project's own venv is not polluted), unpack its sdist for the tests, then run the
selected test files three times, each with pytest's junit XML:

  base    untraced: `python -m pytest ...`
  run     the CLI:  `python -m scope_nb run -q --no-calls -o TRACE -m pytest ...`
  record  in-process: `python -m pytest -p record_plugin ...` (scope_nb.record(modules=...))

and compare the outcome of every test (passed / failed / skipped / error) with the
untraced run, next to the recorder's own errors (trace.errors), its event counts and the
wall-time ratios. Each library's result is kept in corpus/results/NAME.json; RESULTS.md is
rebuilt from all of them, so `--only NAME` refreshes one row.

`--cost` adds what each level of recording costs the same suite, beside VizTracer:

  default    `scope_nb.record()` with its defaults around the session (no calls traced)
  messages   `scope_nb run --no-calls --level messages_only`
  calls      `scope_nb run` with its default: calls of all the program's own code
  viztracer  `viztracer -m pytest ...` with its defaults (every call, stdlib included)

Their outcomes are compared too (a recording mode that changes one counts against the
library; VizTracer's differences are only shown). With `--repeat N` the untraced run and
the cost modes run N times in interleaved rounds and the fastest of each is kept.

    python corpus/run.py [--only NAME[,NAME]] [--fast] [--cost [--repeat N]] [--venv DIR]
    python corpus/run.py --report
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
CACHE = ROOT / ".cache"
OUT = ROOT / "out"
RESULTS = ROOT / "results"
MODES = ("base", "run", "record")
COST_MODES = ("default", "messages", "calls", "viztracer")
TRACE_DIRS = {"run": "trace", "messages": "trace-messages", "calls": "trace-calls"}
TIMEOUT = 300  # seconds for one mode of one library; a hang is an outcome too
SHOWN = 12  # differing tests listed per library and mode in RESULTS.md
COMMON = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]


def load_libraries() -> list[dict]:
    with open(ROOT / "libraries.toml", "rb") as f:
        return tomllib.load(f)["library"]


def pip(py: Path, *args: str) -> None:
    subprocess.run([str(py), "-m", "pip", "-q", "--disable-pip-version-check", *args], check=True)


def ensure_venv(venv: Path, cost: bool = False) -> Path:
    """The corpus venv: scope_nb from this checkout (editable) plus pytest (and
    VizTracer for `--cost`)."""
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip(py, "install", "-e", str(REPO), "pytest")
    if cost and subprocess.run([str(py), "-c", "import viztracer"]).returncode:
        pip(py, "install", "viztracer")
    # byte-compiled as an installed package is (the libraries' wheels are): where
    # PYTHONDONTWRITEBYTECODE is set, an editable checkout would otherwise be compiled
    # from source in every recorded run, and only the recorded runs would pay for it
    subprocess.run([str(py), "-m", "compileall", "-q", str(REPO / "scope_nb")], check=True)
    return py


def fetch(lib: dict, py: Path) -> Path:
    """Unpacked sdist of the pinned version (the tests live there), cached in corpus/.cache."""
    if lib.get("program"):
        return ROOT / "programs"
    CACHE.mkdir(exist_ok=True)
    spec = f"{lib['name']}=={lib['version']}"
    found = [p for p in CACHE.glob("*.tar.gz") if _is_sdist_of(p, lib)]
    if not found:
        pip(py, "download", "--no-deps", "--no-binary", lib["name"], "-d", str(CACHE), spec)
        found = [p for p in CACHE.glob("*.tar.gz") if _is_sdist_of(p, lib)]
    archive = found[0]
    target = CACHE / archive.name.removesuffix(".tar.gz")
    if not target.exists():
        with tarfile.open(archive) as t:
            t.extractall(CACHE, filter="data")
    return target


def _is_sdist_of(path: Path, lib: dict) -> bool:
    stem = path.name.removesuffix(".tar.gz")
    name, _, version = stem.rpartition("-")
    norm = lib["name"].replace("-", "_").lower()
    return name.replace("-", "_").lower() == norm and version == lib["version"]


def install(lib: dict, py: Path) -> None:
    """The pinned wheel and its test dependencies; a marker file skips pip the next time."""
    reqs = list(lib.get("deps", []))
    if not lib.get("program"):
        reqs.insert(0, f"{lib['name']}=={lib['version']}")
    marker = CACHE / f".installed-{lib['name']}"
    want = " ".join(reqs)
    if marker.exists() and marker.read_text() == want:
        return
    if reqs:
        pip(py, "install", *reqs)
    CACHE.mkdir(exist_ok=True)
    marker.write_text(want)


def command(lib: dict, mode: str, py: Path, out: Path) -> tuple[list[str], dict]:
    """The exact command line and extra environment of one mode."""
    pytest_args = [
        *COMMON,
        *lib.get("pytest", []),
        f"--junitxml={out / (mode + '.xml')}",
        *lib["tests"],
    ]
    env = {"PYTHONPATH": str(ROOT)}
    if mode == "base":
        return [str(py), "-m", "pytest", *pytest_args], env
    if mode in TRACE_DIRS:
        flags = {"run": ["--no-calls"], "messages": ["--no-calls", "--level", "messages_only"]}
        return [
            str(py),
            "-m",
            "scope_nb",
            "run",
            "-q",
            *flags.get(mode, []),
            "-o",
            str(out / TRACE_DIRS[mode]),
            "-m",
            "pytest",
            *pytest_args,
        ], env
    if mode == "viztracer":
        viz = ["-m", "viztracer", "--quiet", "-o", str(out / "viztracer.json")]
        return [str(py), *viz, "-m", "pytest", "--", *pytest_args], env
    env["SCOPE_CORPUS_MODULES"] = ",".join(lib["modules"]) if mode == "record" else ""
    env["SCOPE_CORPUS_OUT"] = str(out / f"{mode}.json")
    return [str(py), "-m", "pytest", "-p", "record_plugin", *pytest_args], env


def run_mode(lib: dict, mode: str, py: Path, cwd: Path, out: Path) -> dict:
    cmd, env = command(lib, mode, py, out)
    (out / f"{mode}.xml").unlink(missing_ok=True)  # a crashed run must not read old results
    (out / f"{mode}.json").unlink(missing_ok=True)
    if mode in TRACE_DIRS:
        shutil.rmtree(out / TRACE_DIRS[mode], ignore_errors=True)
    t0 = time.perf_counter()
    with open(out / f"{mode}.log", "w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole session: pytest and its children
            proc.wait()
            rc = "timeout"
    seconds = time.perf_counter() - t0
    result = {
        "cmd": _show(cmd, env),
        "rc": rc,
        "seconds": round(seconds, 2),
        "tests": junit_outcomes(out / f"{mode}.xml"),
    }
    if mode in TRACE_DIRS:
        result["recorder"] = _loaded_summary(py, out / TRACE_DIRS[mode])
        shutil.rmtree(out / TRACE_DIRS[mode], ignore_errors=True)
    elif mode in ("record", "default"):
        path = out / f"{mode}.json"
        result["recorder"] = json.loads(path.read_text()) if path.exists() else {"missing": True}
    elif mode == "viztracer":
        (out / "viztracer.json").unlink(missing_ok=True)
    return result


def _loaded_summary(py: Path, trace: Path) -> dict:
    """trace.errors and events of the CLI's trace, read back by scope_nb.load in the venv."""
    code = (
        "import json, sys, scope_nb, record_plugin;"
        "print(json.dumps(record_plugin.summary(scope_nb.load(sys.argv[1])), default=repr))"
    )
    p = subprocess.run(
        [str(py), "-c", code, str(trace)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=TIMEOUT,
    )
    if p.returncode:
        return {"load_failed": p.stderr.strip().splitlines()[-1:] or ["?"]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _show(cmd: list[str], env: dict) -> str:
    shown = [str(c).replace(str(REPO) + "/", "") for c in cmd]
    pre = [f"{k}={v.replace(str(REPO) + '/', '')}" for k, v in env.items()]
    return " ".join(pre + shown)


def junit_outcomes(path: Path) -> dict[str, dict]:
    """test id -> {"outcome": passed|failed|error|skipped, "message": first line}."""
    if not path.exists():
        return {}
    tests = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = f"{case.get('classname')}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                text = child.get("message") or child.text or ""
                message = text.strip().splitlines()[0][:300] if text.strip() else ""
                if outcome != "skipped":
                    break
        if key in tests and tests[key]["outcome"] != "passed":
            continue  # a teardown error after a failure: keep the first
        tests[key] = {"outcome": outcome, "message": message}
    return tests


def differences(base: dict, other: dict) -> list[dict]:
    out = []
    for key in sorted(set(base) | set(other)):
        a = base.get(key, {"outcome": "absent", "message": ""})
        b = other.get(key, {"outcome": "absent", "message": ""})
        if a["outcome"] != b["outcome"]:
            out.append(
                {
                    "test": key,
                    "base": a["outcome"],
                    "recorded": b["outcome"],
                    "message": b["message"] or a["message"],
                }
            )
    return out


def run_library(lib: dict, py: Path, cost: bool = False, repeat: int = 1) -> dict:
    install(lib, py)
    cwd = fetch(lib, py)
    out = OUT / lib["name"]
    out.mkdir(parents=True, exist_ok=True)
    result = {"name": lib["name"], "version": lib["version"], "modules": lib["modules"]}
    for mode in MODES:
        print(f"[corpus] {lib['name']}: {mode}", flush=True)
        result[mode] = run_mode(lib, mode, py, cwd, out)
    if not cost:  # the timings of an earlier --cost run stay, beside their own untraced time
        previous = RESULTS / f"{lib['name']}.json"
        earlier = json.loads(previous.read_text()) if previous.exists() else {}
        result.update({m: earlier[m] for m in COST_MODES if m in earlier})
        if _cost_of(earlier):
            result["cost"] = _cost_of(earlier)
    if cost:
        for round_ in range(repeat):
            for mode in ("base", *COST_MODES):
                print(f"[corpus] {lib['name']}: {mode} (cost, round {round_ + 1})", flush=True)
                r = run_mode(lib, mode, py, cwd, out)
                if mode == "base":
                    result["base"]["seconds"] = min(result["base"]["seconds"], r["seconds"])
                elif mode not in result or r["seconds"] < result[mode]["seconds"]:
                    result[mode] = r
        result["cost"] = {"base": result["base"]["seconds"]}
        result["cost"].update({m: result[m]["seconds"] for m in recorded_modes(result)})
    for mode in recorded_modes(result):
        result[mode]["differences"] = differences(result["base"]["tests"], result[mode]["tests"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{lib['name']}.json").write_text(json.dumps(result, indent=1, default=repr))
    return result


def recorded_modes(r: dict) -> list[str]:
    """The modes of one result other than the untraced run, in table order."""
    return [m for m in (*MODES[1:], *COST_MODES) if m in r]


def passed(r: dict, modes: tuple[str, ...] | None = None) -> bool:
    """The corpus's pass rule: same outcome test by test, and no recorder error, in each
    recording mode run now (`modes`; all of them by default: VizTracer's outcomes are
    shown, not judged, and an earlier --cost run's modes kept beside are not rejudged)."""
    for mode in recorded_modes(r) if modes is None else modes:
        if mode == "viztracer":
            continue
        rec = r[mode].get("recorder", {})
        if r[mode]["differences"] or not r[mode]["tests"] or rec.get("errors", {"?": 1}):
            return False
    return True


# -- RESULTS.md ----------------------------------------------------------------------------
def _same(r: dict, mode: str) -> str:
    diffs = r[mode]["differences"]
    if r[mode]["rc"] == "timeout":
        return "**timeout**"
    if not r[mode]["tests"]:
        return "**no junit XML**"
    return "yes" if not diffs else f"**no: {len(diffs)}**"


def _errors(r: dict, mode: str) -> str:
    rec = r[mode].get("recorder", {})
    if "errors" not in rec:
        return f"**{'; '.join(f'{k}: {v}' for k, v in rec.items())}**"
    return ", ".join(f"{k}: {v}" for k, v in rec["errors"].items()) or "0"


def _ratio(r: dict, mode: str) -> str:
    base = r["base"]["seconds"]
    return f"{r[mode]['seconds'] / base:.1f}" if base else "?"


def _counts(tests: dict) -> str:
    n = {}
    for t in tests.values():
        n[t["outcome"]] = n.get(t["outcome"], 0) + 1
    return f"{len(tests)} ({', '.join(f'{v} {k}' for k, v in sorted(n.items()))})"


def _cost_of(r: dict) -> dict | None:
    """The seconds of the last --cost run of one result, the untraced run's as "base": kept
    apart, so a later run without --cost (CI's) leaves that run's ratios as they were."""
    if "cost" in r:
        return r["cost"]
    if not any(m in r for m in COST_MODES):
        return None
    return {"base": r["base"]["seconds"], **{m: r[m]["seconds"] for m in recorded_modes(r)}}


def _cost_table(results: list[dict]) -> list[str]:
    """Wall time over the untraced run by level of recording, beside VizTracer."""
    rows = [r for r in results if _cost_of(r)]
    if not rows:
        return []
    lines = [
        "",
        "## What recording costs, by level, beside VizTracer (generated, `--cost`)",
        "",
        "Wall time of the whole test session over the untraced one (pytest's start-up",
        "included), fastest of the rounds. **default** `record()` with its defaults; **run**",
        "`scope-nb run --no-calls`; **messages** the same at `messages_only`; **record**",
        "`record(modules=[the library])` (its calls with arguments); **calls** `scope-nb run`",
        "(every call of the program's own code); **viztracer** its defaults (every call).",
        "scope_nb is byte-compiled first, as the libraries' installed wheels are.",
        "",
        "| library | untraced s | default | run | messages | record | calls | viztracer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = ("default", "run", "messages", "record", "calls", "viztracer")
    for r in rows:
        c = _cost_of(r)
        cells = [
            (f"{c[m] / c['base']:.1f}" if m in c and c["base"] else "?")
            + ("" if not r.get(m, {}).get("differences") else " *")
            for m in order
        ]
        lines.append(f"| {r['name']} | {c['base']:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "\\* outcomes differ from the untraced run (see Findings)."]
    return lines


def write_results(path: Path) -> None:
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    lines = [
        "# Real-library corpus: outcomes untraced vs recorded",
        "",
        "Generated by `corpus/run.py` (do not edit the tables by hand; the notes below the",
        "findings are `corpus/notes.md`). Modes: **run** = `python -m scope_nb run --no-calls",
        "-m pytest ...`, **record** = `scope_nb.record(modules=[...])` around the pytest session",
        "(corpus/record_plugin.py). Ratios are wall time over the untraced run, on a shared",
        "2-core machine: read them as rough.",
        "",
        "| library | version | tests (untraced) | same: run | same: record | recorder errors "
        "run / record | events run / record | ratio run / record | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ev = " / ".join(str(r[m].get("recorder", {}).get("events", "?")) for m in MODES[1:])
        lines.append(
            f"| {r['name']} | {r['version']} | {_counts(r['base']['tests'])} | {_same(r, 'run')} "
            f"| {_same(r, 'record')} | {_errors(r, 'run')} / {_errors(r, 'record')} | {ev} "
            f"| {_ratio(r, 'run')} / {_ratio(r, 'record')} | `python corpus/run.py --only "
            f"{r['name']}` |"
        )
    lines += _cost_table(results)
    lines += ["", "## Findings (generated)", ""]
    for r in results:
        found = []
        for mode in recorded_modes(r):
            diffs = r[mode]["differences"]
            for d in diffs[:SHOWN]:
                found.append(
                    f"- {mode}: `{d['test']}`: {d['base']} untraced, {d['recorded']} "
                    f"recorded: {d['message']!r}"
                )
            if len(diffs) > SHOWN:
                found.append(
                    f"- {mode}: ... and {len(diffs) - SHOWN} more differing tests "
                    f"(corpus/results/{r['name']}.json)"
                )
            rec = r[mode].get("recorder", {})
            for where, n in rec.get("errors", {}).items():
                sample = rec.get("error_samples", {}).get(where, "")
                found.append(f"- {mode}: recorder error `{where}` x{n}: {sample!r}")
            dropped = {k: v for k, v in rec.get("dropped", {}).items() if v}
            if dropped:
                found.append(f"- {mode}: events dropped (kept in memory: max_events): {dropped}")
            if r[mode]["rc"] != r["base"]["rc"]:
                found.append(f"- {mode}: exit code {r[mode]['rc']} (untraced {r['base']['rc']})")
        if found:
            lines += [f"### {r['name']} {r['version']}", "", *found, ""]
    lines += ["## Exact commands", ""]
    for r in results:
        lines += [
            f"### {r['name']}",
            "",
            "cwd: the unpacked sdist (corpus/.cache/NAME-VERSION)",
            "",
            "```",
            *(r[m]["cmd"] for m in ("base", *recorded_modes(r))),
            "```",
            "",
        ]
    notes = ROOT / "notes.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated library names")
    p.add_argument("--fast", action="store_true", help="the CI subset (fast = true)")
    p.add_argument("--venv", default=str(REPO / ".venv-corpus"), help="corpus venv")
    p.add_argument("--cost", action="store_true", help="also time each level and VizTracer")
    p.add_argument("--repeat", type=int, default=1, help="rounds of the --cost timings")
    p.add_argument("--report", action="store_true", help="only rebuild RESULTS.md")
    a = p.parse_args(argv)
    if a.report:
        write_results(ROOT / "RESULTS.md")
        return 0
    libs = load_libraries()
    if a.only:
        names = set(a.only.split(","))
        unknown = names - {lib["name"] for lib in libs}
        if unknown:
            p.error(f"unknown library: {', '.join(sorted(unknown))}")
        libs = [lib for lib in libs if lib["name"] in names]
    if a.fast:
        libs = [lib for lib in libs if lib.get("fast")]
    if a.repeat < 1:
        p.error(f"--repeat must be at least 1, not {a.repeat}")
    py = ensure_venv(Path(a.venv).absolute(), cost=a.cost)
    bad = 0
    for lib in libs:
        r = run_library(lib, py, cost=a.cost, repeat=a.repeat)
        bad += not passed(r, None if a.cost else MODES[1:])
    write_results(ROOT / "RESULTS.md")
    print(
        f"[corpus] {len(libs)} libraries, {bad} with changed outcomes or recorder errors; "
        "see corpus/RESULTS.md"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
