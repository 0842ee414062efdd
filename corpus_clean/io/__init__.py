"""Bytes in, records out, and back. Importers name the module they need:

``inputs`` (the paths to read), ``readers`` (raw units and records), ``codec`` (the JSON
codec), ``sinks`` (atomic outputs, the block writer), ``spill`` (what a run parks until
it writes: memory, then temporary files).
"""
