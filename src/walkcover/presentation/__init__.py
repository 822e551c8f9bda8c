"""Layer 7, what people see and keep: GeoPackages and CSVs (`outputs`), folium maps (`maps`), HTML and
PDF reports (`report`) and the words of ``walkcover explain`` (`explanation`). Calls the layers
below; nothing below calls it."""
