"""Calibration of the between-variant tests by simulation: false-positive rate and power.

    .venv/bin/python experiments/benchmarks/run_level_calibration.py [--sims 2000] [--bootstrap-sims 200] [--seed 0]

The report's claims are about variants (training procedures), so a test is right when, for two
variants equal in expectation, it says "different" at most alpha of the time - over new test images
AND new training runs. Each simulated data set draws both:

* n = 10,000 test images from a population: image i has a latent ease x_i ~ N(mu, S) (shared by the
  variants, so they are paired), plus a variant-by-image part g_vi ~ N(0, 0.25 S) (variants differ
  in WHICH images they get right), plus the variant's shift delta_v;
* k_v runs per variant: run r adds a run-wide shift b_r ~ N(0, tau) and per-image noise e_ri ~ N(0, 1);
  run r gets image i right when x_i + g_vi + delta_v + b_r + e_ri > 0.

mu and delta come from the closed form (the expected accuracy is Phi((mu + delta) / sqrt(1 + tau^2 +
S^2))): expected accuracy 0.86 for B, 0.86 + effect for A. S and tau set the run-to-run spread
(the standard deviation of one variant's accuracy between seeds on a fixed test set), printed as
measured: S = 13 gives about 0.1 points, S = 2.6 about 0.2, and S = 10 with tau = 0.08 about 0.2
of which part is a run-wide shift. Two runs of one variant then disagree on about 2 % (0.1) to 8 %
(0.2) of the images, as seeds of real CIFAR-10 networks do.

Per setting it prints the share of data sets where each test says "different" at alpha = 0.05
(two-sided; at effect 0 that is the false-positive rate, else the power), and for the run-level
test the share answered "no difference larger than 0.5 points" by TOST:

* run-level: `stats.run_level_difference` (what `pairwise_comparisons` uses for every pair with
  a multi-seed variant; a one-seed variant borrows the other's run variance, as the pooled
  variance would with two variants);
* mcnemar: McNemar of seed row 0 of A against seed row 0 of B - exact for "these two trained
  networks", but read as a statement about the variants;
* bootstrap: the two-level (images x seeds) bootstrap of `pairwise_comparisons(method="bootstrap")`
  with 1,000 replicates, on fewer data sets (--bootstrap-sims), at effect 0 only.

* pooled one-seed (`--pooled`): A with one seed against B with three, both full-network variants (the
  0.2-point spread with a run-wide shift), in a report that also has a third full-network variant and four
  heads (three seeds, 0.1-point spread). A borrows a pooled run variance, through
  `stats.pairwise_comparisons` itself: pooled over every multi-seed variant, or within its training mode
  (the report's `groups`).

Recorded output: experiments/benchmarks/outputs.md; what it showed: docs/statistics.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow"))
from cmpt726 import stats  # noqa: E402
from cmpt726.config import schema_default  # noqa: E402

# The report's significance level and smallest effect that matters (the schema's defaults).
ALPHA = schema_default("report.alpha")
SMALLEST_EFFECT = schema_default("report.smallest_effect")
ACCURACY = 0.86
N_IMAGES = 10_000
# (label, S, tau): the run-to-run spread each gives is measured and printed.
SPREADS = [("0.1", 13.0, 0.0), ("0.2", 2.6, 0.0), ("0.2 (with run shift)", 10.0, 0.08)]
SEEDS = [(3, 3), (2, 2), (1, 3), (1, 1)]
EFFECTS = [0.0, 0.5, 1.0]
INTERACTION = 0.25  # sd of the variant-by-image part, as a share of S


def simulate(rng, sims: int, seeds_a: int, seeds_b: int, effect_points: float, S: float, tau: float,
             n: int = N_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """(sims, seeds_a, n) and (sims, seeds_b, n) bool correctness of variants A and B on the same images."""
    scale = np.sqrt(1 + tau**2 + S**2)
    mu = sps.norm.ppf(ACCURACY) * scale
    delta = sps.norm.ppf(ACCURACY + effect_points / 100) * scale - mu
    s_img = S * np.sqrt(1 - INTERACTION**2)
    x = rng.normal(mu, s_img, (sims, 1, n)).astype(np.float32)

    def variant(k, shift):
        g = rng.normal(0.0, INTERACTION * S, (sims, 1, n)).astype(np.float32)
        b = rng.normal(0.0, tau, (sims, k, 1)).astype(np.float32) if tau else 0.0
        e = rng.standard_normal((sims, k, n), dtype=np.float32)
        return x + g + np.float32(shift) + b + e > 0

    return variant(seeds_a, delta), variant(seeds_b, 0.0)


def run_level(a, b, smallest_effect: float = SMALLEST_EFFECT) -> dict:
    """The run-level test on a batch; a one-seed side borrows the other side's run variance."""
    pooled = None
    if a.shape[1] == 1 or b.shape[1] == 1:
        other = b if a.shape[1] == 1 else a
        if other.shape[1] < 2:
            raise ValueError("the run-level test needs a variant with 2+ seeds")
        k = other.shape[1]
        acc = other.mean(-1)
        p = other.mean(-2)
        pooled = (acc.var(-1, ddof=1), (p * (1 - p)).mean(-1) * k / (k - 1), k - 1)
    return stats.run_level_difference(a, b, smallest_effect=smallest_effect, pooled=pooled)


def mcnemar_p(a, b) -> np.ndarray:
    """Exact two-sided McNemar of seed row 0 of A against seed row 0 of B, per data set."""
    x, y = a[:, 0], b[:, 0]
    n01 = np.count_nonzero(x & ~y, axis=-1)
    n10 = np.count_nonzero(~x & y, axis=-1)
    m = n01 + n10
    return np.where(m > 0, np.minimum(1.0, 2 * sps.binom.cdf(np.minimum(n01, n10), np.maximum(m, 1), 0.5)), 1.0)


def measured_spread(rng, S: float, tau: float, runs: int = 200) -> float:
    """The sd (points) of one variant's accuracy over `runs` seeds on one fixed simulated test set."""
    a, _ = simulate(rng, 1, runs, 1, 0.0, S, tau)
    return float(100 * a[0].mean(-1).std(ddof=1))


def pooled_case(rng, sims: int) -> dict[str, float]:
    """The share of data sets where one-seed A and three-seed B, equal in expectation, are called different,
    with the run variance A borrows pooled over all variants or within its mode."""
    hits = {"over all variants": [], "within the mode": []}
    for _ in range(sims):
        a, b = simulate(rng, 1, 1, 3, 0.0, 10.0, 0.08)
        f, _unused = simulate(rng, 1, 3, 1, 0.0, 10.0, 0.08)
        h1, h2 = simulate(rng, 1, 3, 3, 0.0, 13.0, 0.0)
        h3, h4 = simulate(rng, 1, 3, 3, 0.0, 13.0, 0.0)
        correct = {"A": a[0], "B": b[0], "F": f[0], "H1": h1[0], "H2": h2[0], "H3": h3[0], "H4": h4[0]}
        modes = {name: "heads" if name.startswith("H") else "full network" for name in correct}
        for label, groups in (("over all variants", None), ("within the mode", modes)):
            pairs = stats.pairwise_comparisons(correct, alpha=ALPHA, smallest_effect=SMALLEST_EFFECT, groups=groups)
            hits[label].append(stats.find_pair(pairs, "A", "B")["p"] < ALPHA)
    return {label: float(np.mean(h)) for label, h in hits.items()}


def rate(p) -> str:
    return f"{100 * np.mean(p):5.1f} %"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=2000, help="simulated data sets per setting")
    parser.add_argument("--bootstrap-sims", type=int, default=200, help="data sets for the bootstrap (0: skip)")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pooled", action="store_true", help="only the pooled one-seed case")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    print(f"pooled one-seed case: A 1 seed v B 3 seeds, full network (0.2 spread with run shift), with a third "
          f"full-network variant and four heads (0.1 spread), effect 0, {args.sims} data sets:")
    for label, share in pooled_case(rng, args.sims).items():
        print(f"  run variance pooled {label}: 'different' {rate(share)}")
    if args.pooled:
        print(f"{time.perf_counter() - start:.0f} s")
        return
    print(f"{N_IMAGES:,} images, expected accuracy {ACCURACY}, alpha {ALPHA}, {args.sims} data sets per row")
    print("spread (points) | seeds A v B | effect | measured spread | run-level 'different' | TOST 'within 0.5' "
          "| mcnemar seed 0 'different'")
    for label, S, tau in SPREADS:
        spread = measured_spread(rng, S, tau)
        for ka, kb in SEEDS:
            for effect in EFFECTS:
                sig, equiv, mcn = [], [], []
                for done in range(0, args.sims, args.batch):
                    a, b = simulate(rng, min(args.batch, args.sims - done), ka, kb, effect, S, tau)
                    if max(ka, kb) >= 2:
                        r = run_level(a, b)
                        sig.append(r["p"] < ALPHA)
                        equiv.append((r["tost_p"] < ALPHA) & ~(r["p"] < ALPHA))
                    mcn.append(mcnemar_p(a, b) < ALPHA)
                rl = (rate(np.concatenate(sig)), rate(np.concatenate(equiv))) if sig else ("    –  ", "    –  ")
                print(f"{label:>20} | {ka} v {kb} | {effect:.1f} | {spread:.3f} | {rl[0]} | {rl[1]} "
                      f"| {rate(np.concatenate(mcn))}")
    if args.bootstrap_sims:
        print(f"two-level bootstrap (1,000 replicates), effect 0, spread 0.2, {args.bootstrap_sims} data sets:")
        for ka, kb in [(3, 3), (1, 3)]:
            a, b = simulate(rng, args.bootstrap_sims, ka, kb, 0.0, 2.6, 0.0)
            hits = [stats.pairwise_comparisons({"A": a[s], "B": b[s]}, method="bootstrap", replicates=1000,
                                               seed=s, alpha=ALPHA, smallest_effect=SMALLEST_EFFECT)
                    ["pairs"][0]["p"] < ALPHA for s in range(len(a))]
            print(f"  {ka} v {kb}: 'different' {rate(hits)}")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
