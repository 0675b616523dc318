#!/usr/bin/env python3
"""Portico benchmarks: `python benchmarks/run.py [--quick] [--duration S] [--connections 50,200]
[--only portico,nginx,haproxy,stack] [--skip-scale]`. See harness/main.py and BENCHMARKS.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.main import main

if __name__ == "__main__":
    sys.exit(main())
