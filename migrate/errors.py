"""The exceptions of the library, in one place.

    MigrateError                  base: catch this at the CLI edge; str() is a one-line message
    ├── UsageError                the user asked for something that cannot be done (exit 2)
    │   ├── ConfigError           config file, profile or flag is wrong
    │   ├── PlaybookError         a playbook file is invalid (names file, line, step)
    │   ├── MirrorLoop            a mirror would copy records back to their source
    │   ├── GroupActive           a group whose offsets were to be written has live members
    │   └── SyncRefused           an offsets sync refused groups (nothing committed for them)
    ├── EnvironmentProblem        the world is not as needed (exit 2)
    │   ├── ClusterUnreachable    a cluster did not answer in time
    │   ├── KafkaOperationError   a Kafka call failed (translated once, in migrate.kafka)
    │   ├── WriterFailed          a mirror slot's transactional writer cannot go on (the mirror retries it)
    │   ├── LocalClusterError     an embedded local broker could not start or stop
    │   └── StateError            the state database is corrupt, foreign or too new
    └── CheckFailed               a check ran and found a problem (exit 1)
        ├── PartitionDiverged     a mirrored target partition does not match its source
        ├── DataLossDetected      a cluster lost data it had acknowledged
        ├── PlaybookFailed        a playbook run ended without success (the journal says where)
        └── StepFailed            a playbook step did not achieve what it should (the runner journals it)

    ValueError
    └── MapOrderError             an offset pair would break a partition map's order (a bug, so
                                  not a MigrateError: no handler takes it for a known problem)

Every message names what is wrong and what to do next.  Messages never carry secrets:
cluster settings are redacted before they reach an exception (see migrate.config).
"""

from __future__ import annotations

from typing import Any, Mapping

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


class MigrateError(Exception):
    """Base of every error the library raises on purpose."""

    exit_code = EXIT_USAGE


class UsageError(MigrateError):
    """The request cannot be carried out as given."""


class ConfigError(UsageError):
    """The configuration (file, profile, flag or environment variable) is wrong."""


class PlaybookError(UsageError):
    """A playbook file is invalid; raised before any step runs."""


class MirrorLoop(UsageError):
    """A mirror in the opposite direction runs over the same topics: starting would loop."""


class GroupActive(UsageError):
    """A group has live members on the cluster where offsets were to be written."""

    def __init__(self, group: str, cluster: str, members: int | None):
        self.group = group
        self.cluster = cluster
        self.members = members
        count = (f"{members} active member{'s' if members != 1 else ''}" if members
                 else "active members (member count not reported by this platform)")
        super().__init__(
            f'group "{group}" has {count} on cluster "{cluster}"; stop its consumers and retry '
            "(nothing committed)"
        )


class SyncRefused(UsageError):
    """One or more groups were refused (active, rewind, untranslatable); nothing was committed for them."""


class EnvironmentProblem(MigrateError):
    """Something outside the request is not as needed (a cluster, a process, the state)."""


class ClusterUnreachable(EnvironmentProblem):
    """A cluster did not answer a metadata request in time."""

    def __init__(self, name: str, bootstrap: str, reason: str):
        self.name = name
        self.bootstrap = bootstrap
        self.reason = reason
        super().__init__(
            f'cannot reach cluster "{name}" at {bootstrap} ({reason}); check bootstrap.servers'
        )


class KafkaOperationError(EnvironmentProblem):
    """A Kafka request failed; the message says which request and which cluster."""


# librdkafka error names that mean the target refused a record itself (too large, invalid):
# retrying cannot help until the target is reconfigured
REFUSED_ERRORS = ("MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "MESSAGE_TOO_LARGE", "INVALID_RECORD")


class WriterFailed(EnvironmentProblem):
    """A slot's writer cannot go on; the engine reconciles the slot's partitions again.

    Raised by migrate.mirror.writer and handled inside the mirror engine (it aborts the slot
    and retries it later); it does not reach the CLI edge.

    `partitions`: the partitions a delivery error was reported for (may be empty when the
    error came from the transaction as a whole).
    `error_names`: the librdkafka error names (`KafkaError.name()`, e.g. MSG_SIZE_TOO_LARGE)
    of the Kafka errors the message reports; empty when no Kafka error was involved.
    """

    def __init__(self, message: str, partitions: tuple[tuple[str, int], ...] = (),
                 error_names: tuple[str, ...] = ()):
        super().__init__(message)
        self.partitions = partitions
        self.error_names = error_names

    @property
    def refused(self) -> bool:
        """True when the target refused a record itself (retrying cannot help until it is reconfigured)."""
        return any(name in REFUSED_ERRORS for name in self.error_names)


class LocalClusterError(EnvironmentProblem):
    """An embedded local broker could not be started, found or stopped."""


class StateError(EnvironmentProblem):
    """The state database cannot be used (corrupt, foreign, or from a newer version)."""


class CheckFailed(MigrateError):
    """A check ran to completion and found a problem."""

    exit_code = EXIT_CHECK_FAILED


class PartitionDiverged(CheckFailed):
    """A mirrored target partition holds records that do not match the source."""

    def __init__(self, topic: str, partition: int, message: str):
        self.topic = topic
        self.partition = partition
        super().__init__(message)


class DataLossDetected(CheckFailed):
    """A cluster no longer holds data it acknowledged (offsets went backwards, topic vanished)."""

    def __init__(self, cluster: str, topic: str, partition: int, message: str):
        self.cluster = cluster
        self.topic = topic
        self.partition = partition
        super().__init__(message)


class PlaybookFailed(CheckFailed):
    """The run ended without success; the journal says where."""


class StepFailed(CheckFailed):
    """A step ran and did not achieve what it should; the message says what was seen.

    Raised by playbook actions only; the runner catches it, journals `output` and `data`
    with the step, and goes on by the step's failure policy.
    """

    def __init__(self, message: str, output: str = "", data: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.output = output
        self.data = dict(data or {})


class MapOrderError(ValueError):
    """An offset pair would break the map's ordering invariants.

    Deliberately not a MigrateError: reconciliation finds the outside causes (another writer,
    a recreated target) first, so reaching this is a bug, and the handlers of MigrateError (the
    CLI edge, the playbook runner) must not report it as a known problem.
    """
