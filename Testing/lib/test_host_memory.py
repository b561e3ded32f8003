"""A predictor on the CPU keeps freed host memory for reuse: a large block freed and made again faults no pages in;
what a prompt freed is given back when it ends."""
import json
import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
glibc_only = pytest.mark.skipif(not GLIBC, reason="glibc only")
MAPPED_AFRESH = 32  # page faults of a 64 MB block glibc maps afresh: one per page (4 KB, or 2 MB huge pages)

# run in a fresh interpreter (the allocator's settings are per process): SETUP, then page faults while a 64 MB block
# is made and filled a second time, before and after it
PROBE = """
import json, resource
import numpy as np
from RefSAM3DLib.engine.host_memory import keep_freed_memory

def refill_faults():
    np.ones(1 << 24, dtype=np.float32)  # 64 MB, freed at once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(1 << 24, dtype=np.float32)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = refill_faults()
SETUP
print(json.dumps({"default": default, "applied": applied, "kept": refill_faults(), "again": keep_freed_memory()}))
"""
BY_HAND = "applied = keep_freed_memory()"
BY_A_PREDICTOR = """
from RefSAM3DLib.engine.predictor import RefSAM3DPredictor
from RefSAM3DLib.modeling.config import get_config
from RefSAM3DLib.modeling.refsam3d import RefSAM3D
RefSAM3DPredictor(RefSAM3D(get_config("tiny")), device="cpu")
applied = None
"""


def _run(code: str, env_extra: dict | None = None) -> dict:
    env = dict(os.environ, **(env_extra or {}))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@glibc_only
def test_a_freed_large_block_is_reused_without_faulting_its_pages_in_again():
    result = _run(PROBE.replace("SETUP", BY_HAND))
    assert result["default"] >= MAPPED_AFRESH
    assert result["applied"] and result["again"]
    assert result["kept"] < 8


@glibc_only
def test_the_allocator_is_left_alone_when_the_user_says_so():
    result = _run(PROBE.replace("SETUP", BY_HAND), {"REFSAM3D_KEEP_FREED_MEMORY": "0"})
    assert not result["applied"] and not result["again"]
    assert result["kept"] >= MAPPED_AFRESH


@glibc_only
def test_a_predictor_on_the_cpu_keeps_freed_memory():
    result = _run(PROBE.replace("SETUP", BY_A_PREDICTOR), {"REFSAM3D_KEEP_FREED_MEMORY": "1"})
    assert result["kept"] < 8  # measured before anything but the predictor could have applied it


@glibc_only
def test_memory_freed_during_a_prompt_is_given_back_when_it_ends():
    result = _run("""
import json, numpy as np
from RefSAM3DLib.engine.host_memory import keep_freed_memory, release_freed_memory

def resident_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

keep_freed_memory()
blocks = [np.ones(1 << 24, dtype=np.float32) for _ in range(4)]  # 256 MB
alive = np.ones(1 << 20, dtype=np.float32)  # made after them: above them in the heap, so they are not at its top
del blocks
held = resident_mb()
release_freed_memory()
print(json.dumps({"held": held, "released": resident_mb()}))
""")
    assert result["held"] - result["released"] > 200  # MB: the freed blocks, kept until the prompt ended
