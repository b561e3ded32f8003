"""`python -m RefSAM3DLib.training ...` -- the torchrun entry point (same options as `refsam3d train`).

    torchrun --nproc_per_node 8 -m RefSAM3DLib.training --datalist data.yaml --config vit_b \
        --sam-checkpoint sam_vit_b_01ec64.pth --out runs/vit_b
"""
import sys

from ..commands.train import main

if __name__ == "__main__":
    sys.exit(main())
