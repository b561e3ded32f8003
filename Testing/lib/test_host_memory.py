"""A predictor on the CPU keeps freed host memory for reuse: a large block freed and made again faults no pages in."""
import json
import platform
import subprocess
import sys

import pytest

# in a fresh interpreter: page faults while a 64 MB block is made and filled a second time, before and after
PROBE = """
import json, resource, sys
import numpy as np
from RefSAM3DLib.engine.host_memory import keep_freed_memory

def refill_faults():
    np.ones(1 << 24, dtype=np.float32)  # 64 MB, freed at once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(1 << 24, dtype=np.float32)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = refill_faults()
applied = keep_freed_memory()
print(json.dumps({"default": default, "applied": applied, "kept": refill_faults(), "again": keep_freed_memory()}))
"""


def _probe(env_extra: dict | None = None) -> dict:
    import os

    env = dict(os.environ, **(env_extra or {}))
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_a_freed_large_block_is_reused_without_faulting_its_pages_in_again():
    result = _probe()
    assert result["default"] >= 32  # glibc maps 64 MB afresh: a fault per page (4 KB, or 2 MB huge pages)
    assert result["applied"] and result["again"]
    assert result["kept"] * 10 < result["default"]


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_allocator_is_left_alone_when_the_user_says_so():
    result = _probe({"REFSAM3D_KEEP_FREED_MEMORY": "0"})
    assert not result["applied"] and not result["again"]
    assert result["kept"] >= 32


def test_a_predictor_on_the_cpu_keeps_freed_memory():
    from RefSAM3DLib.engine import host_memory
    from RefSAM3DLib.engine.predictor import RefSAM3DPredictor
    from RefSAM3DLib.modeling.config import get_config
    from RefSAM3DLib.modeling.refsam3d import RefSAM3D

    RefSAM3DPredictor(RefSAM3D(get_config("tiny")), device="cpu")
    assert host_memory._applied is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_memory_freed_during_a_prompt_is_given_back_when_it_ends():
    probe = """
import json, numpy as np
from RefSAM3DLib.engine.host_memory import keep_freed_memory, release_freed_memory

def resident_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

keep_freed_memory()
keep = np.ones(1 << 20, dtype=np.float32)  # 4 MB made after the big blocks: they lie below it in the heap
blocks = [np.ones(1 << 24, dtype=np.float32) for _ in range(4)]  # 256 MB
keep = np.ones(1 << 20, dtype=np.float32)
del blocks
held = resident_mb()
release_freed_memory()
print(json.dumps({"held": held, "released": resident_mb()}))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["held"] - result["released"] > 200  # MB: the freed blocks, kept until the prompt ended
