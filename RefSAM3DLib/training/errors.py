"""Training's name for the dataset error (defined in ``cases``, which evaluation shares)."""
from ..cases.errors import DatasetError

__all__ = ["DatasetError"]
