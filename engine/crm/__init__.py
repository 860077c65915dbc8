"""Leads as CRMs hold them: mappings (presets for HubSpot and Salesforce), readers and writers for CSV, JSON, JSON Lines and Parquet.

    from engine.crm import load_mapping, read_records, MappingError, flatten_decision, DECISION_COLUMNS

    mapping = load_mapping("hubspot", ps)          # a preset name or a `kind: mapping` YAML file
    for row, record in read_records("export.csv"):  # (row, dict) or (row, RecordError)
        lead = mapping.to_lead(record, activities=None, row=row)
"""

from engine.crm.columns import DECISION_COLUMNS, flatten_decision
from engine.crm.mapping import Mapping, MappingError, load_mapping, presets
from engine.crm.records import InputError, RecordError, read_records

__all__ = ["DECISION_COLUMNS", "InputError", "Mapping", "MappingError", "RecordError", "flatten_decision",
           "load_mapping", "presets", "read_records"]
