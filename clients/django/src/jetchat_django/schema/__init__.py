"""jetchat's payloads as TypedDicts, generated from docs/schemas (tools/gen_schema.py)."""
