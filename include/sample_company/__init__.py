"""A deterministic creative-services company: its file exports, dirty as real ones are,
and the ground truth beside them (see docs/sample-company.md)."""
