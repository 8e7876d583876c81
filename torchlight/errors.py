"""The error that the command-line tools turn into one `error: ...` line (exit code 2)."""


class ConfigError(ValueError):
    """A problem with the user's configuration or input files, reported as one line."""
