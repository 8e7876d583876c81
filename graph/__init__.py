"""Skeleton graphs: layouts (joints, edges, bones) and the normalised adjacency built from them."""
import numpy as np

from graph.layouts import LAYOUTS, Layout
from torchlight.registry import ConfigError, closest


def get_layout(name):
    if name not in LAYOUTS:
        raise ConfigError(f"unknown graph layout '{name}'{closest(name, LAYOUTS)}; known: {', '.join(LAYOUTS)}")
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
    return np.stack([
        np.eye(v, dtype=np.float32),
        normalise_columns(edges_to_matrix(layout.inward, v)),
        normalise_columns(edges_to_matrix(layout.outward, v)),
    ])


__all__ = ['Layout', 'LAYOUTS', 'get_layout', 'spatial_adjacency']
