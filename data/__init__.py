"""Dataset preparation (`python -m data.prepare`) and the bundled synthetic demo dataset."""


class DataFileError(ValueError):
    """A raw data file that cannot be prepared; the message names the file (and line where
    known)."""


def read_text(path):
    """A raw file's text; DataFileError naming the file when it is not text (binary bytes)."""
    try:
        with open(path, 'r', newline=None) as f:  # universal newlines: LF and CRLF alike
            return f.read()
    except UnicodeDecodeError as err:
        byte = err.object[err.start]
        raise DataFileError(
            f'{path}: not a text file (byte 0x{byte:02x} at offset {err.start})'
        ) from None
