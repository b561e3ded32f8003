"""The model zoo: which RefSAM3D and base models exist, where their files live, and how to get them.

``catalogue.json`` lists every model with its checksum and licence; files are either bundled in the
package (``zoo/models/``) or downloaded once into a cache folder (``REFSAM3D_CACHE`` or
``~/.cache/refsam3d``), with resumable, checksum-verified downloads that work behind flaky links
and fail with a clear "place the file here" message when offline (``REFSAM3D_OFFLINE=1``).
The low-level downloader is ``RefSAM3DLib.zoo.download.download``; it is not re-exported here so
that ``RefSAM3DLib.zoo.download`` stays the module.
"""
from .cache import cache_dir, cached_path
from .catalogue import ModelEntry, get_entry, load_catalogue
from .commands import download_model, list_models, model_path
from .errors import (
                     CatalogueError,
                     ChecksumMismatchError,
                     ModelUnavailableError,
                     UnknownModelError,
                     UnverifiedDownloadWarning,
                     ZooError,
)
from .resolve import resolve_model

__all__ = [
    "CatalogueError", "ChecksumMismatchError", "ModelEntry", "ModelUnavailableError", "UnknownModelError",
    "UnverifiedDownloadWarning", "ZooError", "cache_dir", "cached_path", "download_model", "get_entry",
    "list_models", "load_catalogue", "model_path", "resolve_model",
]
