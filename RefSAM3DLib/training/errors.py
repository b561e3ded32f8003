"""A datalist or training input that cannot be used, named precisely."""


class DatasetError(ValueError):
    """'<file>: <what is wrong>; <what to do>' for a datalist entry, image or label."""
