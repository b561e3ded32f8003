"""Who made a segmentation: the algorithm name and version every exported file records."""
from __future__ import annotations

from importlib import metadata

ALGORITHM_NAME = "RefSAM3D"


def refsam3d_version() -> str:
    """The installed package version; a source checkout that was never installed still gets a valid string."""
    try:
        return metadata.version("refsam3d")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"
