"""Name → class registries, so that a config names components without importing code."""
import difflib
import inspect


class ConfigError(ValueError):
    """A problem with the user's configuration or input files, reported as one line."""


def closest(name, choices):
    """' (did you mean X?)' for the closest valid choice, or '' when nothing is close."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ''


def check_keys(given, valid, where):
    """Raise ConfigError naming the first key of `given` that is not in `valid`."""
    for key in given:
        if key not in valid:
            raise ConfigError(f"unknown key '{key}' in {where}{closest(key, valid)}; "
                              f"valid keys: {', '.join(sorted(valid))}")


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name):
        def add(obj):
            if name in self._entries:
                raise KeyError(f'{self.kind} {name!r} is registered twice')
            self._entries[name] = obj
            return obj
        return add

    def names(self):
        return sorted(self._entries)

    def get(self, name):
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} '{name}'{closest(name, self._entries)}; "
                              f"known: {', '.join(self.names())}")
        return self._entries[name]

    def build(self, name, **kwargs):
        """Instantiate entry `name`, refusing keyword arguments its signature does not take."""
        obj = self.get(name)
        params = inspect.signature(obj).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            check_keys(kwargs, [p for p in params if p != 'self'], f'the arguments of {self.kind} {name!r}')
        return obj(**kwargs)
