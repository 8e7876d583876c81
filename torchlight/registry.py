"""Name → class registries, so that a config names components without importing code."""

from torchlight.errors import ConfigError
from torchlight.validation import check_arguments, check_keys, closest

__all__ = ['ConfigError', 'Registry', 'check_keys', 'closest']


class Registry:
    """`removed`: {argument: why} for arguments that no entry takes any more; a config that still
    sets one is told why, rather than that the key is unknown."""

    def __init__(self, kind, removed=None):
        self.kind = kind
        self.removed = removed or {}
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
            raise ConfigError(
                f"unknown {self.kind} '{name}'{closest(name, self._entries)}; "
                f"known: {', '.join(self.names())}"
            )
        return self._entries[name]

    def check(self, name, arguments, where):
        """Refuse arguments that entry `name` does not take or whose values do not fit its
        annotations."""
        for key in arguments:
            if key in self.removed:
                raise ConfigError(f'{where}.{key} was removed: {self.removed[key]}; delete the key')
        check_arguments(self.get(name), arguments, where)

    def build(self, name, **kwargs):
        """Instantiate entry `name` from checked keyword arguments."""
        self.check(name, kwargs, f'{self.kind}_args')
        return self.get(name)(**kwargs)
