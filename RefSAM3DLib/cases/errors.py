"""A datalist or labelled case that cannot be used, named precisely."""
from ..errors import RefSAM3DError


class DatasetError(RefSAM3DError, ValueError):
    """'<file>: <what is wrong>; <what to do>' for a datalist entry, image or label."""
