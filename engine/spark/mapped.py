"""CRM tables through a mapping on Spark: the mapping travels as its bytes, and lead ids come from the mapping.

A mapping (`engine.crm`: a preset or a mapping YAML file) is checked on the driver against the verified policy
set, then shipped as (name, bytes) and compiled once per worker with `engine.crm.mapping.compile_mapping`, the
path `leadops eval --mapping` workers take. Which lead a source record or an activity row belongs to is the
mapping's knowledge (`id` rule, `join_key`), so a Python pass adds `_leadops_id` to both tables before Spark joins
them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Any, Iterator

from engine.spark.rows import ID_COLUMN, raw_leads
from engine.spark.shipping import Shipment, worker_policy_set


@dataclass(frozen=True)
class MappingSource:
    """A mapping as plain data for the workers: its name (for messages) and the exact bytes checked on the driver."""

    name: str
    data: bytes


def load_on_driver(spec: str, policy_set: Any) -> MappingSource:
    """Check the mapping (preset name or file) against the policy set; raises PolicyError with located messages."""
    from engine.crm import load_mapping

    mapping = load_mapping(spec, policy_set)
    name, data = mapping.source
    return MappingSource(name, data)


_MAPPINGS: dict[tuple[str, str], Any] = {}  # (bundle SHA-256, mapping SHA-256) -> compiled Mapping, per worker


def worker_mapping(shipment: Shipment, source: MappingSource) -> Any:
    """The mapping compiled in this worker against the shipped policy set, once."""
    key = (shipment.sha256, hashlib.sha256(source.data).hexdigest())
    mapping = _MAPPINGS.get(key)
    if mapping is None:
        from engine.crm.mapping import compile_mapping

        mapping = _MAPPINGS[key] = compile_mapping(source.data, source.name, worker_policy_set(shipment))
    return mapping


def record_key(mapping: Any, record: Any, side: str) -> str | None:
    """The lead id of a source record (`side` "lead") or of an activity row ("activity"); None when it has none."""
    if not isinstance(record, dict):
        return None
    if side == "activity":
        return mapping.join_key(record)
    from engine.batch import _source_id  # the one reading of a source record's id (batch error records use it)

    return _source_id(mapping, record)


def key_partition(shipment: Shipment, source: MappingSource, mode: str, side: str,
                  batches: Iterator[Any]) -> Iterator[Any]:
    """`mapInArrow`: every batch as it came, plus `_leadops_id` from the mapping."""
    import pyarrow as pa

    mapping = worker_mapping(shipment, source)
    for batch in batches:
        keys = [None if problem else record_key(mapping, record, side)
                for record, _acts, _text, problem in raw_leads(batch, mode)]
        yield batch.append_column(ID_COLUMN, pa.array(keys, pa.string()))


def keyed(df: Any, mode: str, side: str, *, shipment: Shipment, source: MappingSource) -> Any:
    """`df` with `_leadops_id` computed by the mapping (see the module docstring)."""
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([*df.schema.fields, StructField(ID_COLUMN, StringType())])
    return df.mapInArrow(partial(key_partition, shipment, source, mode, side), schema)


__all__ = ["MappingSource", "keyed", "load_on_driver", "record_key", "worker_mapping"]
