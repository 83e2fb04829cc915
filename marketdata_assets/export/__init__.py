"""Export stored market data as Parquet (zstd, decimal128) or CSV datasets partitioned by symbol and date.

No Dagster import: `marketdata export` and scripts use it directly. See run.export_table.
"""

from marketdata_assets.export.read import ExportValueError, read_table
from marketdata_assets.export.run import ExportResult, export_table
from marketdata_assets.export.tables import TableSpec, table_names, table_spec

__all__ = ["ExportResult", "ExportValueError", "TableSpec", "export_table", "read_table", "table_names",
           "table_spec"]
