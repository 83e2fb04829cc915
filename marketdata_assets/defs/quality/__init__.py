"""The daily data quality score per symbol (`data_quality`)."""
