"""``train.py`` makes torch's OpenMP threads sleep while they wait (``OMP_WAIT_POLICY=PASSIVE``),
set before torch loads its OpenMP runtime (which reads the variable once), unless the environment
already sets a policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.app.helpers import ROOT

# Imports train.py as a module (its main does not run) and prints the policy in the environment at
# the moment torch is first imported, and after the import.
PROBE = """
import json, os, sys
seen = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append(os.environ.get("OMP_WAIT_POLICY"))

sys.meta_path.insert(0, Watch())
sys.path.insert(0, sys.argv[1])
import train
print(json.dumps({"at_torch_import": seen[0] if seen else "torch not imported",
                  "after": os.environ.get("OMP_WAIT_POLICY")}))
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_wait_policy_is_set_before_torch_loads_and_a_given_one_wins(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT)], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"at_torch_import": expected, "after": expected}
