"""Convergence over several runs (a variant's seeds), for the report's tables.

Kept out of search.py on purpose: search.py is in the code digest of every training job (finetune imports it
through tuning), so a report-side helper there would retrain every variant when it changes.
"""

from __future__ import annotations

from .search import convergence


def runs_convergence(histories: list[list[dict]]) -> dict:
    """`convergence` over several runs: in how many the kept epoch is the last (`kept_last`), of how many runs
    (`runs`) and of how many scored on validation (`scored`), and the mean rise of their validation accuracy over
    the last fifth of the epochs (`last_fifth_rise`, points; None when no run has one)."""
    runs = [convergence(h) for h in histories]
    rises = [r["last_fifth_rise"] for r in runs if r["last_fifth_rise"] is not None]
    return {"kept_last": sum(bool(r["kept_is_last"]) for r in runs), "runs": len(runs),
            "scored": sum(r["kept_is_last"] is not None for r in runs),
            "last_fifth_rise": sum(rises) / len(rises) if rises else None}
