"""The training-speed tables of docs/benchmarks.md are generated from the committed JSON reports of
benchmarks/fused_training.py and benchmarks/throughput.py (by benchmarks/speed_tables.py)."""

from __future__ import annotations

import importlib.util

from tests.app.helpers import ROOT

SCRIPT = ROOT / "benchmarks" / "speed_tables.py"
TABLES = ("fused_training_cpu", "throughput_steps_cpu.steps", "throughput_cpu.process",
          "throughput_cpu.concurrent")  # fmt: skip


def speed_tables():
    spec = importlib.util.spec_from_file_location("speed_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_speed_tables_are_generated_from_the_reports():
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    for name in TABLES:
        assert f"<!-- speed:{name} -->" in page, name
    assert speed_tables().main(["--check"]) == 0


def test_a_table_that_differs_from_its_report_is_found(tmp_path, monkeypatch, capsys):
    module = speed_tables()
    page = tmp_path / "page.md"
    fresh = module.render((ROOT / "docs" / "benchmarks.md").read_text())
    page.write_text(fresh.replace("<!-- speed:throughput_cpu.process -->\n| network",
                                  "<!-- speed:throughput_cpu.process -->\n| a typed"))  # fmt: skip
    monkeypatch.setattr(module, "PAGES", [page])
    monkeypatch.setattr(module, "ROOT", tmp_path)
    assert module.main(["--check"]) == 1
    assert "page.md" in capsys.readouterr().err
    assert module.main([]) == 0 and page.read_text() == fresh
