"""Training's name for the datalist reader (defined in ``cases.datalist``, which evaluation shares)."""
from ..cases.datalist import Case, Datalist, load_datalist

__all__ = ["Case", "Datalist", "load_datalist"]
