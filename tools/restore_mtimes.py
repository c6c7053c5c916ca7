#!/usr/bin/env python3
"""Give every file git tracks in this checkout the time of the last commit that changed it.

Snakemake reruns a job whose inputs or script are newer than its outputs, and `git clone` stamps every
file with the time of the clone. So results copied into a fresh clone (with their own times kept,
`cp -a`) would all look out of date. Run this once in the fresh clone, before `snakemake`:

    python tools/restore_mtimes.py          # from the checkout's root

Results made from a commit are newer than that commit's files, so Snakemake then plans nothing for
them; a file changed by a later commit is newer again and reruns what uses it, as it should.
"""

from __future__ import annotations

import os
import subprocess
import sys


def commit_times(root: str = ".") -> dict[str, int]:
    """Path → Unix time of the newest commit that touched it, for every tracked file (one `git log`)."""
    tracked = set(subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True,
                                 text=True).stdout.split("\0")) - {""}
    log = subprocess.run(["git", "log", "--format=@%ct", "--name-only", "--no-renames", "-z"], cwd=root,
                         capture_output=True, check=True, text=True).stdout
    times: dict[str, int] = {}
    when = None
    for token in log.replace("\n", "\0").split("\0"):
        if token.startswith("@") and token[1:].isdigit():
            when = int(token[1:])
        elif token and token in tracked and token not in times:  # newest first: keep the first seen
            times[token] = when
    return times


def main(root: str = ".") -> int:
    times = commit_times(root)
    for path, when in times.items():
        os.utime(os.path.join(root, path), (when, when), follow_symlinks=False)
    print(f"{len(times)} tracked files set to the time of their last commit")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
