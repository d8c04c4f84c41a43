"""Comparing results files recomputed from committed runs with the committed ones."""

from __future__ import annotations

import pytest


def same_json(a, b, rel: float = 1e-12) -> bool:
    """Equal structure and values, floats to ``rel`` relative: another CPU's numpy, or Python 3.12's compensated
    ``sum()``, may round a sum differently in its last digits."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_json(a[k], b[k], rel) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same_json(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) and not isinstance(b, bool) and isinstance(b, (int, float)):
        return b == pytest.approx(a, rel=rel, abs=rel)
    return type(a) is type(b) and a == b
