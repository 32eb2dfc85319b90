"""Write the sample mesh ``disk.msh`` (shipped as package data in pdesolve/data/meshes/).

A Delaunay triangulation of the disk of radius 1/2 centred at (1/2, 1/2), with 8 rings of nodes
(217 nodes, 384 triangles), and named boundary cell sets ``boundary`` (the whole circle) and
``west`` (the half with x < 1/2).

    python scripts/make_disk_mesh.py OUT.msh   # then compare with pdesolve/data/meshes/disk.msh
"""

import argparse
import os

import meshio
import numpy as np
from scipy.spatial import Delaunay

RINGS = 8


def disk_mesh(rings: int = RINGS) -> meshio.Mesh:
    pts = [np.zeros((1, 2))]
    for k in range(1, rings + 1):
        m = 6 * k
        angle = 2 * np.pi * (np.arange(m) / m + 0.5 * (k % 2) / m)
        pts.append(0.5 * k / rings * np.stack([np.cos(angle), np.sin(angle)], axis=1))
    points = np.vstack(pts) + 0.5
    triangles = Delaunay(points).simplices
    outer = np.arange(len(points) - 6 * rings, len(points))
    lines = np.stack([outer, np.roll(outer, -1)], axis=1)
    west = np.flatnonzero(points[lines].mean(axis=1)[:, 0] < 0.5)
    # gmsh physical groups: 1 = boundary, 2 = west, 3 = domain; lines listed twice (one per group)
    line_cells = np.vstack([lines, lines[west]])
    phys_lines = np.concatenate([np.full(len(lines), 1), np.full(len(west), 2)])
    return meshio.Mesh(
        np.hstack([points, np.zeros((len(points), 1))]),
        [("line", line_cells), ("triangle", triangles)],
        cell_data={
            "gmsh:physical": [phys_lines, np.full(len(triangles), 3)],
            "gmsh:geometrical": [phys_lines, np.full(len(triangles), 3)],
        },
        field_data={
            "boundary": np.array([1, 1]),
            "west": np.array([2, 1]),
            "domain": np.array([3, 2]),
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip('"'))
    parser.add_argument("out", help="the .msh file to write (refused if it exists)")
    parser.add_argument("--rings", type=int, default=RINGS, help="rings of nodes (default 8)")
    args = parser.parse_args()
    out = args.out
    if os.path.exists(out):
        parser.error(f"{out} exists: give a new file name")
    mesh = disk_mesh(args.rings)
    meshio.write(out, mesh, file_format="gmsh22", binary=False)
    print(f"wrote {out}: {len(mesh.points)} nodes, {len(mesh.cells[1].data)} triangles")
