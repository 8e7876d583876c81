"""A skeleton layout of your own, from a YAML file (`graph: layouts/my_rig.yaml` in model_args):

    joints: [hip, spine, head, left_knee, right_knee]   # names, index = joint id
    edges: [[spine, hip], [head, spine], [left_knee, hip], [right_knee, hip]]
    centre: hip
    bones: [[spine, hip], [head, spine]]                 # optional

Joints in `edges`, `centre` and `bones` are names or 0-based indices. The edges must form a tree
that links every joint (V − 1 edges, no loop): the partitions of CTR-GCN and ST-GCN sort each
joint's neighbours by their direction to the centre, and the bone stream takes one bone per
joint, from its parent. The edges may be written in either direction; they are turned towards
the centre here. `bones` defaults to the tree's (joint, parent) pairs and the centre's zero bone.
"""

from graph.layouts import Layout
from torchlight.registry import ConfigError
from torchlight.yamlfile import read_yaml

KEYS = ('joints', 'edges', 'centre', 'bones')
REQUIRED = ('joints', 'edges', 'centre')


def read_layout_file(path):
    """The Layout that the YAML file `path` describes, named by its path; ConfigError naming the
    file and the problem."""
    content = read_yaml(path, 'layout file')
    if not isinstance(content, dict):
        raise ConfigError(f'layout file {path}: expected a mapping with keys {", ".join(KEYS)}')
    unknown = sorted(set(content) - set(KEYS), key=str)
    if unknown:
        raise ConfigError(f'layout file {path}: unknown key {unknown[0]!r}; known: '
                          f'{", ".join(KEYS)}')
    missing = [key for key in REQUIRED if key not in content]
    if missing:
        raise ConfigError(f'layout file {path}: {missing[0]} is missing')
    joints = joint_names(path, content['joints'])
    centre = joint_id(path, joints, content['centre'], 'centre')
    edges = joint_pairs(path, joints, content['edges'], 'edges')
    inward = towards_centre(path, joints, edges, centre)
    bones = joint_pairs(path, joints, content.get('bones') or [], 'bones')
    check_bones(path, joints, bones)
    return Layout(name=path, joints=joints, inward=inward, centre=centre, bones=bones)


def joint_names(path, names):
    if not isinstance(names, list) or not names:
        raise ConfigError(f'layout file {path}: joints must be a non-empty list of names')
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(f'layout file {path}: joint name {name!r} is not a non-empty string')
    repeated = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if repeated:
        raise ConfigError(f'layout file {path}: joint {repeated!r} is named twice')
    return tuple(names)


def joint_id(path, joints, joint, where):
    """A joint given by name or 0-based index, as its index."""
    if isinstance(joint, str):
        if joint not in joints:
            raise ConfigError(f'layout file {path}: {where} names an unknown joint {joint!r}')
        return joints.index(joint)
    if not isinstance(joint, int) or isinstance(joint, bool):
        raise ConfigError(f'layout file {path}: {where}: {joint!r} is neither a joint name nor '
                          f'an index')
    if not 0 <= joint < len(joints):
        raise ConfigError(f'layout file {path}: {where}: joint index {joint} is out of range '
                          f'(0 to {len(joints) - 1})')
    return joint


def joint_pairs(path, joints, pairs, key):
    if not isinstance(pairs, list):
        raise ConfigError(f'layout file {path}: {key} must be a list of [joint, joint] pairs')
    result = []
    for i, pair in enumerate(pairs):
        where = f'{key}[{i}]'
        if not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(f'layout file {path}: {where} is {pair!r}, not a [joint, joint] pair')
        result.append(tuple(joint_id(path, joints, joint, where) for joint in pair))
    return tuple(result)


def towards_centre(path, joints, edges, centre):
    """The edges as (child, parent) pairs of a tree rooted at the centre, found by walking out from
    it; a self-link, a repeated edge, a loop or an unreached joint is named."""
    neighbours = {joint: [] for joint in range(len(joints))}
    for i, (a, b) in enumerate(edges):
        if a == b:
            raise ConfigError(f'layout file {path}: edges[{i}] links {joints[a]!r} to itself')
        if b in neighbours[a]:
            raise ConfigError(f'layout file {path}: edges[{i}] repeats the edge '
                              f'{joints[a]!r}-{joints[b]!r}')
        neighbours[a].append(b)
        neighbours[b].append(a)
    if len(edges) >= len(joints):
        raise ConfigError(
            f'layout file {path}: {len(edges)} edges for {len(joints)} joints form a loop; the '
            f'graph must be a tree ({len(joints) - 1} edges): drop one edge of each loop'
        )
    parent = {centre: centre}
    frontier = [centre]
    while frontier:
        joint = frontier.pop()
        for other in neighbours[joint]:
            if other not in parent:
                parent[other] = joint
                frontier.append(other)
    unreached = [joints[j] for j in range(len(joints)) if j not in parent]
    if unreached:
        raise ConfigError(
            f'layout file {path}: the graph is not connected: no edge path links '
            f'{", ".join(unreached)} to the centre {joints[centre]!r}'
        )
    return tuple((child, parent[child]) for child in sorted(parent) if child != centre)


def check_bones(path, joints, bones):
    """Each joint gets at most one bone (a second would overwrite the first)."""
    seen = set()
    for i, (joint, _) in enumerate(bones):
        if joint in seen:
            raise ConfigError(f'layout file {path}: bones[{i}] gives joint {joints[joint]!r} a '
                              f'second bone')
        seen.add(joint)
