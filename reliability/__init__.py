"""Portico's fault suite: real processes, real faults, figures written to RELIABILITY.md.

`reliability/run` runs every scenario in `reliability.scenarios`; tests/reliability runs their quick versions.
"""
