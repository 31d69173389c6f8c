"""The same checks with kafka-python, the other client estates use.

Where kafka-python has the API, the probe asks the same question through it, because two
clients can meet different answers from one platform (different request versions, different
handling of a dropped connection).  The runner compares the two clients' statuses and
reports any disagreement as a finding of its own.

The checks live by subject beside their confluent-kafka counterparts:
`kafka_python_data_checks`, `kafka_python_group_checks` and `kafka_python_admin_checks`, over
the clients of `kafka_python_client`.  This module names them for the catalogue
(`checks.py`: `kp.fidelity`, ...).
"""

from __future__ import annotations

from migrate.probe.kafka_python_admin_checks import (acl_api, create_partitions, delete_records, scram_api,
                                                     topic_configs)
from migrate.probe.kafka_python_client import read, settings
from migrate.probe.kafka_python_data_checks import (NUL_HEADER, compression, fidelity, header_name_nul,
                                                    idempotent_producer, list_offsets, transactions)
from migrate.probe.kafka_python_group_checks import groups

__all__ = ["NUL_HEADER", "acl_api", "compression", "create_partitions", "delete_records", "fidelity", "groups",
           "header_name_nul", "idempotent_producer", "list_offsets", "read", "scram_api", "settings",
           "topic_configs", "transactions"]
