"""The training-speed tables of docs/benchmarks.md, generated from the committed JSON reports.

    python benchmarks/speed_tables.py           # rewrite the tables in the pages
    python benchmarks/speed_tables.py --check   # exit 1 if a page differs from the reports

Each table sits between ``<!-- speed:NAME -->`` and ``<!-- /speed:NAME -->``: ``NAME`` is a report
``benchmarks/results/NAME.json`` written by ``benchmarks/fused_training.py --json`` (its table), or
``REPORT.SECTION`` for a section of one written by ``benchmarks/throughput.py --json`` (``steps``,
``process`` or ``concurrent``), or a report named in ``REPORTS`` (``binary_layers_cpu``, written by
``benchmarks/binary_layers.py --json``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGES = [ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "library" / "speed.md"]
STEP_ARMS = ("eager", "fused", "default")
# What the layer column says of a network without surrogate's scalar hard-op modules.
NO_LAYERS = {
    "plain_cnn": "cnn's, as torch ops under intercept",
    "cat_vae": "— (argmax only: no fused kernel)",
}


def fused_training_table(results: list[dict]) -> str:
    """One row per case, op and dtype of a ``fused_training.py`` report."""
    lines = [
        "| network / data | op | dtype | hard-op layer: elements, fused/eager | step ms: eager, "
        "fused, default | fused/eager | default/faster | default/float |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        layers = "; ".join(
            f"`{x['layer']}` {x['elements']:,}: {x['ratio']:.2f}" for x in r["layers"]
        )
        s = r["steps"]
        ms = ", ".join(f"{s['ms'][k]:.1f}" for k in STEP_ARMS)
        versus_float = f"{s['default_over_float']:.2f}" if "default_over_float" in s else "—"
        layers = layers or NO_LAYERS.get(r["case"].split("/")[0], "—")
        lines.append(
            f"| {r['case']} | {r['op']} | {r['dtype']} | {layers} "
            f"| {ms} | {s['fused_over_eager']:.2f} | {s['default_over_best']:.2f} ({s['best']}) "
            f"| {versus_float} |"
        )
    return "\n".join(lines)


def steps_table(cases: dict) -> str:
    """Images per second of the training step, app and plain loop, per variant."""
    keys = [k for found in cases.values() for k in found.get("steps", {})]
    keys = list(dict.fromkeys(keys))
    head = ["network / data", *(k.replace("lightning", "app") for k in keys)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case, found in cases.items():
        if "steps" in found:
            cells = [f"{found['steps'][k]['images_per_s']:.0f}" for k in keys]
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def process_table(cases: dict) -> str:
    """Whole-process wall seconds of ``train.py`` per variant, and the ratio to the default's."""
    names = list(dict.fromkeys(n for found in cases.values() for n in found.get("process", {})))
    head = ["network / data", *names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case, found in cases.items():
        if "process" in found:
            cells = []
            for name in names:
                v = found["process"][name]
                ratio = "" if name == "default" else f" ({v['over_default']:.2f}x)"
                cells.append(f"{v['wall_s']:.1f} s{ratio}")
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def concurrent_table(cases: dict) -> str:
    """One run alone against two started at once, per threading variant."""
    lines = [
        "| network / data | variant | alone | each of two at once | two at once / alone (max) |",
        "|---|---|---|---|---|",
    ]
    for case, found in cases.items():
        for name, v in found.get("concurrent", {}).items():
            lines.append(
                f"| {case} | {name} | {v['alone_wall_s']:.1f} s | {v['pair_wall_s']:.1f} s | "
                f"{v['pair_over_alone']:.2f}x ({v['pair_over_alone_max']:.2f}x) |"
            )
    return "\n".join(lines)


def binary_layers_table(report: dict) -> str:
    """Forward plus backward of each binary and low-bit layer against its float layer."""
    lines = [
        "| layer / input | contender | median ms | / float (quartiles) | target |",
        "|---|---|---|---|---|",
    ]
    for group, found in report["groups"].items():
        where = f"{group} / {'×'.join(map(str, found['input']))}"
        for name, v in found["contenders"].items():
            what = f"`{v['module']}`"
            if "error" in v:
                why = v["error"].replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {where} | {what} | not run: {why} | — | — |")
                continue
            ratio = f"{v['over_float']:.2f}x"
            if "over_float_quartiles" in v and name != "float":
                low, high = v["over_float_quartiles"]
                ratio += f" ({low:.2f}–{high:.2f})"
            if "over_brevitas" in v:
                ratio += f"; {v['over_brevitas']:.2f}x Brevitas"
            target = "—"
            if "target" in v:
                target = f"<= {v['target']}x, {'met' if v['met'] else 'missed'}"
            lines.append(f"| {where} | {what} | {v['ms']:.1f} | {ratio} | {target} |")
    return "\n".join(lines)


def lif_speed_table(report: dict) -> str:
    """Forward plus backward of one LIF layer, ours against snnTorch and SpikingJelly, and what
    each keeps for backward."""
    lines = [
        "| T × B × N | arm | median ms | / ours (quartiles) | saved for backward | target |",
        "|---|---|---|---|---|---|",
    ]
    for found in report["steps"].values():
        where = "×".join(map(str, found["input"]))
        for v in found["arms"].values():
            what = f"`{v['module']}`"
            if "error" in v:
                why = v["error"].replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {where} | {what} | not run: {why} | — | — | — |")
                continue
            ratio = f"{v['over_ours']:.2f}x"
            if "over_ours_quartiles" in v:
                low, high = v["over_ours_quartiles"]
                ratio += f" ({low:.2f}–{high:.2f})"
            saved = "—"
            if "saved" in v:
                saved = f"{v['saved']['bump_inputs']:.2f} × T·B·N·4 B"
            target = "—"
            if "target" in v:
                target = f"ours >= {v['target']}x faster, {'met' if v['met'] else 'missed'}"
            elif "limit" in v.get("saved", {}):
                met = "met" if v["saved"]["met"] else "missed"
                target = f"saved <= {v['saved']['limit']} × T·B·N·4 B, {met}"
            ms = f"{v['ms']:.1f}"
            if v["module"].startswith("torch.compile"):
                ms += f" (first call, compiling: {v['first_call_s']:.0f} s)"
            lines.append(f"| {where} | {what} | {ms} | {ratio} | {saved} | {target} |")
    return "\n".join(lines)


def csnn_snntorch_table(report: dict) -> str:
    """The app's convolutional spiking network against the same network in snnTorch: test accuracy
    over seeds and the median training step."""
    seeds = ", ".join(map(str, report["sizing"]["seeds"]))
    lines = [
        f"| network | test accuracy, mean ± std (seeds {seeds}) | per seed | step ms, median "
        "(batch 128) | / ours (per seed) |",
        "|---|---|---|---|---|",
    ]
    summary = report["summary"]
    what = {"ours": "`SpikingCNN` (`surrogate.LIF`)", "snntorch": "snnTorch (`snn.Leaky` loops)"}
    for name, v in summary.items():
        accuracy = f"{100 * v['test_accuracy_mean']:.2f} ± {100 * v['test_accuracy_std']:.2f} %"
        if "welch_p_accuracy" in v:
            accuracy += f" (Welch p = {v['welch_p_accuracy']:.2f} against ours)"
        per_seed = ", ".join(f"{100 * a:.2f}" for a in v["test_accuracies"])
        ratio = "1.00x"
        if "step_ms_over_ours" in v:
            each = ", ".join(f"{r:.2f}" for r in v["step_ms_over_ours_per_seed"])
            ratio = f"{v['step_ms_over_ours']:.2f}x ({each})"
        lines.append(f"| {what.get(name, name)} | {accuracy} | {per_seed} | "
                     f"{v['step_ms_median']:.0f} | {ratio} |")  # fmt: skip
    return "\n".join(lines)


SECTIONS = {"steps": steps_table, "process": process_table, "concurrent": concurrent_table}
# Reports whose whole body is one table, by name.
REPORTS = {"binary_layers_cpu": binary_layers_table, "lif_speed_cpu": lif_speed_table}
REPORTS["csnn_snntorch_cpu"] = csnn_snntorch_table  # benchmarks/csnn_snntorch.py --json


def table(name: str) -> str:
    report_name, _, section = name.partition(".")
    report = json.loads((RESULTS / f"{report_name}.json").read_text())
    if section:
        return SECTIONS[section](report["cases"])
    if report_name in REPORTS:
        return REPORTS[report_name](report)
    return fused_training_table(report["results"])


def render(text: str) -> str:
    """``text`` with every marked table regenerated."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        return f"<!-- speed:{name} -->\n{table(name)}\n<!-- /speed:{name} -->"

    pattern = re.compile(r"<!-- speed:([\w.]+) -->\n(?:.*?\n)?<!-- /speed:\1 -->", re.DOTALL)
    return pattern.sub(replace, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        text = page.read_text()
        new = render(text)
        if new != text:
            stale.append(page.relative_to(ROOT).as_posix())
            if not args.check:
                page.write_text(new)
    if args.check and stale:
        print(f"The speed tables of {', '.join(stale)} differ from benchmarks/results; run "
              "python benchmarks/speed_tables.py", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
