"""Layer 3, the engine: the walk network in metres (`network`), snapping and the multi-source
shortest-path passes (`coverage`), the safe-route network (`barriers`) and street contexts
(`street_context`). Knows OSM layers and standards, nothing of districts' figures, outputs or maps."""
