"""Dataset preparation (`python data/prepare.py`) and the bundled synthetic demo dataset."""


class DataFileError(ValueError):
    """A raw data file that cannot be prepared; the message names the file (and line where known)."""
