"""YAML as configs read it: safe (plain data only, nothing executes), 1e-3 read as a number,
duplicate keys refused."""

import re

import yaml

from torchlight.errors import ConfigError

FLOAT_TAG = 'tag:yaml.org,2002:float'
# YAML 1.1's float wants a dot and a signed exponent (1.0e-3): 1e-3 and 5e-4 would be strings.
FLOAT = re.compile(
    r'''^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$''',
    re.X,
)


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader that reads 1e-3 as a float and refuses a mapping that repeats a key (YAML would
    silently keep the last value)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key if isinstance(key, (str, int, float, bool)) else id(key_node))
        return super().construct_mapping(node, deep)


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(FLOAT_TAG, FLOAT, list('-+0123456789.'))


def parse(text):
    """Plain data from a YAML document (a string or an open file); yaml.YAMLError when invalid."""
    return yaml.load(text, Loader=ConfigLoader)


def read_yaml(path, what='file'):
    """The content of a YAML file, or ConfigError naming the file and the problem (and line)."""
    try:
        with open(path) as f:
            return parse(f)
    except FileNotFoundError:
        raise ConfigError(f'{what} not found: {path}') from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f'cannot read {path}: {err}') from None
    except yaml.YAMLError as err:
        raise ConfigError(f'{path} is not valid YAML: {describe_error(err)}') from None


def describe_error(err):
    """'line N: problem' of a YAML error, on one line."""
    mark, problem = getattr(err, 'problem_mark', None), getattr(err, 'problem', None)
    text = problem if problem else str(err)
    return ' '.join((f'line {mark.line + 1}: {text}' if mark else text).split())
