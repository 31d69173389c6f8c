"""The demo's cutover hooks: move the live apps by writing their wish and waiting for it.

    python -m migrate.demo.hooks consumers stopped|source|target --control DIR
    python -m migrate.demo.hooks producers stopped|source|target --control DIR

In a rehearsal (`MIGRATE_REHEARSAL=1`) a hook only says what it would do: production apps
are never touched by a rehearsal.  This is the shape any estate's hook takes: a real one
scales a deployment or flips a feature flag, then waits until the change is done.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from migrate.demo import control


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate.demo.hooks")
    parser.add_argument("role", choices=control.ROLES)
    parser.add_argument("cluster", choices=control.PLACES)
    parser.add_argument("--control", required=True, type=Path)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if os.environ.get("MIGRATE_REHEARSAL") == "1":
        print(f"rehearsal: would move {args.role} to {args.cluster}")
        return 0
    seq = control.set_wish(args.control, args.role, args.cluster)
    try:
        apps = control.wait_done(args.control, args.role, seq, args.cluster, args.timeout)
    except TimeoutError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"{args.role} on {args.cluster}: {', '.join(apps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
