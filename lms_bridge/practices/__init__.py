"""The library of promising practices: consented, curated course projects searchable across cohorts."""
