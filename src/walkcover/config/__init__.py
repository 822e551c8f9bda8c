"""Layer 1, configuration: the plan's standards (`standards`) and the cities with their districts and
working CRS (`study_area`), read from YAML and validated. Imports nothing above it."""
