"""Actions on clusters: probe, background mirrors, waits on lag and groups, parity, offsets.

Each action calls the piece of the tool that owns the work: the mirror runs as a child
`migrate mirror --follow` (so it outlives this process and a resumed run finds it), lag is
read as `migrate mirror status` reads it (state + partition ends from Fetch), group states
come from `migrate.groups`, offsets from `migrate.offset_maps.checkpoint` (through a route
from `migrate.offset_maps.route`), parity from `migrate validate` (exit 0 parity, 1
divergence, 2 could not run).  Every action is idempotent; waits poll until their condition
holds or the step's deadline passes.

This module owns the set: importing it registers every cluster action (`actions.registry`
does), one module per action or family: `probe_action`, `mirror_actions`, `group_actions`,
`parity_action`, `offset_actions`, `assert_action`, with what they share in
`cluster_support`.  The action functions are re-exported here under their old names.
"""

from __future__ import annotations

# imported in the order the actions were registered before the split (`local_actions` first,
# through `cluster_support`), so listings of the registry keep their order
from migrate.playbooks.cluster_support import POLL
from migrate.playbooks.probe_action import run_probe
from migrate.playbooks.mirror_actions import mirror_lag, run_mirror_start, run_mirror_stop, run_mirror_wait
from migrate.playbooks.group_actions import run_groups_wait
from migrate.playbooks.parity_action import run_validate
from migrate.playbooks.offset_actions import run_offsets_sync
from migrate.playbooks.assert_action import run_assert

__all__ = ["POLL", "mirror_lag", "run_assert", "run_groups_wait", "run_mirror_start", "run_mirror_stop",
           "run_mirror_wait", "run_offsets_sync", "run_probe", "run_validate"]
