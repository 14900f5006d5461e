"""A person's data: export, erasure and retention (the tool's answer to Moodle's Privacy API)."""
