"""Reports: image grids, the summary table."""
