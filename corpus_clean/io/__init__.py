"""Bytes in, records out, and back; see each module."""
