"""How the demo's live apps are told where to run, and how they answer.

A control directory holds one wish file per role (`producers.json`, `consumers.json`:
`{"cluster": "source" | "target" | "stopped", "seq": N}`) written by the hooks, and one
status file per app process (`status/<app>.json`: where it runs now, which wish it has
carried out, how many events it handled).  A hook writes a wish and waits until every app of
that role reports it carried that wish out: so a "stop consumers" hook returns only when the
consumers have committed and left their groups.  Files are replaced atomically.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from migrate.waiting import wait_until

ROLES = ("producers", "consumers")
PLACES = ("source", "target", "stopped")


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def wish_path(control: Path, role: str) -> Path:
    return Path(control) / f"{role}.json"


def read_wish(control: Path, role: str) -> dict:
    return read_json(wish_path(control, role)) or {"cluster": "source", "seq": 0}


def set_wish(control: Path, role: str, cluster: str) -> int:
    current = read_wish(control, role)
    seq = int(current.get("seq", 0)) + 1
    write_json(wish_path(control, role), {"cluster": cluster, "seq": seq})
    return seq


def status_path(control: Path, app: str) -> Path:
    return Path(control) / "status" / f"{app}.json"


def report(control: Path, app: str, role: str, cluster: str, seq: int, count: int) -> None:
    write_json(status_path(control, app), {"role": role, "cluster": cluster, "seq": seq, "count": count,
                                           "pid": os.getpid(), "at": time.time()})


def statuses(control: Path, role: str) -> dict[str, dict]:
    folder = Path(control) / "status"
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        data = read_json(path)
        if data and data.get("role") == role:
            out[path.stem] = data
    return out


def wait_done(control: Path, role: str, seq: int, cluster: str, timeout: float) -> list[str]:
    """Wait until every app of the role reports the wish `seq` done; returns the app names."""
    apps: dict = {}

    def done() -> list[str] | None:
        nonlocal apps
        apps = statuses(control, role)
        if apps and all(a.get("seq", 0) >= seq and a.get("cluster") == cluster for a in apps.values()):
            return sorted(apps)
        return None

    def pending() -> TimeoutError:
        late = {name: a.get("cluster") for name, a in apps.items() if a.get("seq", 0) < seq}
        return TimeoutError(f"{role} did not reach {cluster} within {timeout:.0f}s (pending: {late or 'no apps'})")

    return wait_until(done, timeout, 0.05, pending)
