"""The one place that knows Snakemake's `script:` object.

Every script in workflow/scripts/ is `run(snakemake, lambda smk: some_function(...))`:
the log gets stdout, stderr and the traceback; the terminal gets one line naming
the problem; torch uses exactly the threads the rule declared.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback


def set_threads(threads: int) -> None:
    """Pin intra-op threads before torch starts its pool (and after, if it already did)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def run(smk, main) -> None:
    set_threads(max(1, int(smk.threads)))
    log_path = smk.log[0] if len(smk.log) else os.devnull
    terminal = sys.stderr
    with open(log_path, "w", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            main(smk)
        except Exception as error:  # the job fails either way; say why in one line where the user looks
            traceback.print_exc(file=log)
            print(f"ERROR in rule {smk.rule}: {error} (log: {log_path})", file=terminal)
            sys.exit(1)
