"""Code the frames of nzip archives on a Ray cluster (``pip install 'nzip[ray]'``).

Frames are independent and every probability is integer-exact, so a frame
coded by a task on another machine is the same bytes as one coded here:
an archive made with a cluster is byte-identical to ``nzip`` on one machine
with the same options, and either decodes the other's.

    import nzip
    from nzip.cluster import RayCluster

    with RayCluster("local") as cluster:  # or "auto", or "ray://head:10001"
        packed = nzip.compress(data, cluster=cluster)
        assert nzip.decompress(packed, cluster=cluster) == data

The command line takes ``--ray ADDRESS``.  See docs/CLUSTER.md.
"""

from __future__ import annotations

from .ray_cluster import ClusterError, RayCluster

__all__ = ["ClusterError", "RayCluster"]
