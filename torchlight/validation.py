"""Values checked against the types that the functions consuming them declare.

A function built from a config declares what each argument takes in its annotation, e.g.

    def ctrgcn(num_class: Annotated[int, Range(ge=1)] = 60,
               drop_out: Annotated[float, Range(ge=0, lt=1)] = 0.0)

and `check_arguments` refuses any other value with one line naming the key. Types understood: bool,
int, float (an int is accepted; NaN and Inf are not), str, None, dict, unions (`Optional[T]`,
`A | B`), `Literal[...]`, `list[T]` (a YAML list), `dict[str, T]`; `Annotated[T, marker, ...]` adds
the markers below. An argument without an annotation is not checked.
"""

import difflib
import inspect
import math
import types
import typing
from dataclasses import dataclass

from torchlight.errors import ConfigError


def closest(name, choices):
    """' (did you mean X?)' for the closest valid choice, or '' when nothing is close."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ''


def check_keys(given, valid, where):
    """Raise ConfigError naming the first key of `given` that is not in `valid`."""
    for key in given:
        if key not in valid:
            raise ConfigError(
                f"unknown key '{key}' in {where}{closest(key, valid)}; "
                f"valid keys: {', '.join(sorted(valid))}"
            )


class Marker:
    """A constraint on a value that already has the right type."""

    def holds(self, value):
        raise NotImplementedError

    def describe(self):
        raise NotImplementedError


@dataclass(frozen=True)
class Range(Marker):
    """Bounds of a number: ge (>=) or gt (>) below, le (<=) or lt (<) above."""

    ge: float = None
    gt: float = None
    le: float = None
    lt: float = None

    def holds(self, value):
        return (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def describe(self):
        low = (
            f'[{self.ge:g}'
            if self.ge is not None
            else f'({self.gt:g}'
            if self.gt is not None
            else None
        )
        high = (
            f'{self.le:g}]'
            if self.le is not None
            else f'{self.lt:g})'
            if self.lt is not None
            else None
        )
        if low and high:
            return f'in {low}, {high}'
        if low:
            return ('>= ' if low[0] == '[' else '> ') + low[1:]
        return ('<= ' if high[-1] == ']' else '< ') + high[:-1]


@dataclass(frozen=True)
class Length(Marker):
    """How many items a list holds: from `least` to `most`."""

    least: int
    most: int

    def holds(self, value):
        return self.least <= len(value) <= self.most

    def describe(self):
        return f'of {self.least} to {self.most} items'


@dataclass(frozen=True)
class Ascending(Marker):
    """A list whose items never decrease."""

    def holds(self, value):
        return all(a <= b for a, b in zip(value, value[1:]))

    def describe(self):
        return 'in ascending order'


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


PLAIN_TYPES = {
    bool: (lambda v: isinstance(v, bool), 'true or false'),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), 'an integer'),
    float: (is_number, 'a number'),
    str: (lambda v: isinstance(v, str), 'a string'),
    type(None): (lambda v: v is None, 'null'),
    dict: (lambda v: isinstance(v, dict), 'a mapping'),
    list: (lambda v: isinstance(v, (list, tuple)), 'a list'),
}


def fits(value, kind):
    """Whether `value` (plain YAML data) is of the annotated type `kind`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Annotated:
        markers = [m for m in args[1:] if isinstance(m, Marker)]
        return fits(value, args[0]) and all(m.holds(value) for m in markers)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, option) for option in args)
    if origin is typing.Literal:
        return any(value == option and type(value) is type(option) for option in args)
    if origin is list:
        return isinstance(value, (list, tuple)) and all(fits(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            fits(k, args[0]) and fits(v, args[1]) for k, v in value.items()
        )
    if kind in PLAIN_TYPES:
        return PLAIN_TYPES[kind][0](value)
    return True  # no annotation (or one this module does not read): unchecked


def describe(kind):
    """What `fits` accepts, in words: 'an integer >= 1', 'one of train, test', ..."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Annotated:
        markers = [m.describe() for m in args[1:] if isinstance(m, Marker)]
        return ' '.join([describe(args[0]), *markers])
    if origin in (typing.Union, types.UnionType):
        return ' or '.join(describe(option) for option in args)
    if origin is typing.Literal:
        return 'one of ' + ', '.join(str(option) for option in args)
    if origin is list:
        return f'a list (each item {describe(args[0])})'
    if origin is dict:
        return f'a mapping (each value {describe(args[1])})'
    return PLAIN_TYPES[kind][1] if kind in PLAIN_TYPES else 'anything'


def check_value(name, value, kind):
    if not fits(value, kind):
        raise ConfigError(f'{name} must be {describe(kind)}, got {value!r}')


def check_arguments(function, arguments, where):
    """Refuse arguments that `function` does not take, and values that do not fit its
    annotations."""
    params = {
        name: p
        for name, p in inspect.signature(function, eval_str=True).parameters.items()
        if name != 'self'
    }
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        check_keys(arguments, params, where)
    for name, value in arguments.items():
        if name in params:
            check_value(f'{where}.{name}', value, params[name].annotation)
