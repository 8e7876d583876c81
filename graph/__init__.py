"""Skeleton graphs: layouts (joints, edges, bones) and the normalised adjacency built from them."""

import numpy as np

from graph.layout_file import read_layout_file
from graph.layouts import LAYOUTS, Layout
from torchlight.registry import ConfigError, closest

LAYOUT_FILE_SUFFIXES = ('.yaml', '.yml')


def get_layout(name):
    """A layout by its name in the registry, or by the path of a YAML layout file."""
    if name.endswith(LAYOUT_FILE_SUFFIXES):
        return read_layout_file(name)
    if name not in LAYOUTS:
        raise ConfigError(
            f"unknown graph layout '{name}'{closest(name, LAYOUTS)}; known: {', '.join(LAYOUTS)}, "
            f"or the path of a layout file (.yaml)"
        )
    return LAYOUTS[name]


def edges_to_matrix(edges, num_joints):
    """A[j, i] = 1 for every edge (i, j): column i holds the joints that joint i sends to."""
    matrix = np.zeros((num_joints, num_joints), dtype=np.float32)
    for i, j in edges:
        matrix[j, i] = 1
    return matrix


def normalise_columns(matrix):
    """Divide each column by its sum (columns summing to zero are left at zero)."""
    degree = matrix.sum(axis=0)
    scale = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return matrix * scale[None, :]


def spatial_adjacency(layout):
    """(3, V, V): self links, column-normalised inward edges, column-normalised outward edges."""
    v = layout.num_joints
    return np.stack(
        [
            np.eye(v, dtype=np.float32),
            normalise_columns(edges_to_matrix(layout.inward, v)),
            normalise_columns(edges_to_matrix(layout.outward, v)),
        ]
    )


def hop_distance(layout, max_hop=1):
    """Hops between joints along the undirected skeleton; inf beyond `max_hop` (as ST-GCN computes
    it)."""
    links = np.eye(layout.num_joints)
    for i, j in layout.inward:
        links[i, j] = links[j, i] = 1
    distance = np.full(links.shape, np.inf)
    for hops in range(max_hop, -1, -1):
        distance[np.linalg.matrix_power(links, hops) > 0] = hops
    return distance


def distance_partition(layout):
    """ST-GCN's 'spatial' strategy (Yan et al.): (3, V, V) = root, centripetal, centrifugal
    neighbours.

    The joints within one hop, column-normalised, are split by their distance to the centre (the
    layout's root) compared with the receiving joint's. Distances are truncated at one hop as in the
    reference, so two neighbours that are both farther than one hop from the centre count as 'root'
    and join the centripetal set.
    """
    distance = hop_distance(layout)
    normalised = normalise_columns((distance <= 1).astype(np.float32))
    to_centre = distance[:, layout.root]
    # [j, i]: joint j compared with joint i
    same_or_farther = to_centre[:, None] >= to_centre[None, :]
    neighbours = distance == 1
    return np.stack(
        [
            normalised * (distance == 0),
            normalised * (neighbours & same_or_farther),
            normalised * (neighbours & ~same_or_farther),
        ]
    ).astype(np.float32)


__all__ = ['Layout', 'LAYOUTS', 'distance_partition', 'get_layout', 'spatial_adjacency']
