"""Course project rules: stages, status workflow, deadlines, rubric, forms, uploads, groups, export.

Plain Python only (no Flask, no database) so every rule is tested without a request.
"""
