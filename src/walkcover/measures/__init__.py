"""Layer 4, what is measured on the engine: facilities per standard (`facilities`, planners' imports in
`facility_files`), residents (`demand`, `population`), denominator land (`land`), per-district
figures (`indicators`) and gap polygons and service areas (`gaps`)."""
