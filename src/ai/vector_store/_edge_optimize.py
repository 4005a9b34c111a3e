"""Child process of `EdgeVectorStore.optimize`: optimize one Edge shard directory in place.

Run as a script (`python _edge_optimize.py DIR`), never imported by the store: it exists because
`EdgeShard.optimize()` in qdrant-edge-py 0.9.0 holds the GIL for its whole run (seconds at 10k
points, minutes at 100k), which would freeze the server's event loop if run in a thread.
"""

from __future__ import annotations

import contextlib
import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: _edge_optimize.py SHARD_DIR", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):
        os.nice(10)  # index building yields the CPU to the serving process
    from qdrant_edge import EdgeShard

    shard = EdgeShard.load(argv[1])
    try:
        changed = shard.optimize()
        shard.flush()
    finally:
        shard.close()
    print("optimized" if changed else "unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
