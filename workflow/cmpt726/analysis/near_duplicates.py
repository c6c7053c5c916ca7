"""Train–test near-duplicates (Barz & Denzler 2020, "Do we train on test data? Purging CIFAR of near-duplicates").

Every test image gets its nearest training image by a pixel distance, which decides `flagged`, and by feature
cosine similarity, reported beside it only (features make look-alikes score as high as copies).

Pixel distance d: the RMS difference of the standardised image and its standardised detail (the image less its
5×5 local mean), minimised over shifts of up to `MAX_SHIFT` pixels: 0 for a copy, near √2 for unrelated images.
Candidates come from 8×8 thumbnail correlation (a copy is always among them). Threshold: exp(median − k · 1.4826
· MAD) of the log distances, a robust low-outlier rule that ignores the copies while they are under half the set.
"""

import math
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import read_table, write_json, write_tsv

MAX_SHIFT = 1  # pixels, each direction
HIGH_PASS = 5  # side of the local mean that the detail channels subtract
THUMBNAIL = 8  # side of the candidate-search thumbnails
MAD_TO_SD = 1.4826  # MAD → standard deviation for a normal distribution
DISTANCE_FLOOR = 1e-4  # log(max(d, floor)): exact copies (d = 0) stay finite
STD_FLOOR = 1e-6  # an image without detail standardises to all zeros
MIN_TEST_IMAGES = 10  # the median/MAD rule needs a distribution
CHUNK = 512  # test images per block of a similarity matrix: 512 × 50,000 floats (~100 MB) at a time
REFINE_BLOCK = 256  # test images per block of exact distances: 256 × 16 × 6,144 floats (~100 MB)

COLUMNS = ["index", "train_index", "pixel_distance", "feature_index", "feature_cosine", "flagged"]
_COLUMN_TYPES = [int, int, float, int, float, int]


def rule_text(k: float) -> str:
    return (f"flagged if pixel_distance <= exp(median(l) - {k:g} * {MAD_TO_SD} * median(|l - median(l)|)), "
            f"l = log(max(d, {DISTANCE_FLOOR:g})) over the test set's nearest-neighbour pixel distances d")


@dataclass(frozen=True)
class NearDuplicates:
    """One entry per test image, plus the threshold and how it came about."""

    train_index: np.ndarray  # (N_test,) int64: nearest training image by pixel distance
    pixel_distance: np.ndarray  # (N_test,) float32: that distance (0 = copy; about 1-1.4 = unrelated)
    feature_index: np.ndarray  # (N_test,) int64: nearest training image by feature cosine similarity
    feature_cosine: np.ndarray  # (N_test,) float32: that cosine similarity
    flagged: np.ndarray  # (N_test,) bool: pixel_distance <= threshold
    threshold: float
    rule: str
    threshold_details: dict = field(default_factory=dict)  # k, median, robust sd (log space)

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())


def _check_images(train_images, test_images) -> None:
    for name, images in (("train_images", train_images), ("test_images", test_images)):
        if images.ndim != 4:
            raise ValueError(f"{name} must be (N, C, H, W), found shape {images.shape}")
        if len(images) == 0:
            raise ValueError(f"{name} is empty")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(f"train images are {train_images.shape[1:]} but test images {test_images.shape[1:]}")
    if min(train_images.shape[2:]) <= 2 * MAX_SHIFT:
        raise ValueError(f"images of {train_images.shape[2:]} pixels are too small for shifts of {MAX_SHIFT}")


def _standardize_rows(x):
    """Rows of a float tensor to mean 0, sd 1 (population), in place; constant rows become 0."""
    x -= x.mean(dim=1, keepdim=True)
    return x.div_(x.pow(2).mean(dim=1, keepdim=True).sqrt_().clamp_(min=STD_FLOOR))


def prepare(images, chunk: int = 1024, dtype=None):
    """(N, 2C, H, W): the standardised image, then its standardised detail."""
    import torch

    n, c, h, w = images.shape
    out = torch.empty((n, 2 * c, h, w), dtype=dtype or torch.float32)
    rows, cols = _box_matrix(h), _box_matrix(w)
    for start in range(0, n, chunk):
        x = torch.as_tensor(np.ascontiguousarray(images[start:start + chunk])).float()
        detail = x - rows @ (x @ cols.T)  # the 5×5 local mean as two matrix products (faster than avg_pool2d)
        out[start:start + chunk, :c] = _standardize_rows(x.flatten(1)).view_as(x)
        out[start:start + chunk, c:] = _standardize_rows(detail.flatten(1)).view_as(x)
    return out


def _box_matrix(n: int):
    """(n, n): row p averages entries p − 2 … p + 2 that exist, so A X Bᵀ is the 5×5 local mean of X."""
    import torch

    i = torch.arange(n)
    near = ((i[:, None] - i[None, :]).abs() <= HIGH_PASS // 2).float()
    return near / near.sum(dim=1, keepdim=True)


def _prepare_training(train_images, max_shift: int, chunk: int = 1024):
    """Prepared training images as float16 (N, 2C·H·W) and the window sums of squares of those rounded values."""
    import torch

    prepared = prepare(train_images, chunk, dtype=torch.float16)
    sq = torch.empty(len(prepared), len(_shifts(max_shift)))
    block = torch.empty((min(chunk, len(prepared)), *prepared.shape[1:]))
    for start in range(0, len(prepared), chunk):
        part = block[:len(prepared[start:start + chunk])]
        sq[start:start + chunk] = _window_sums_of_squares(part.copy_(prepared[start:start + chunk]), max_shift)
    return prepared.flatten(1), sq


def _shifts(max_shift: int) -> list[tuple[int, int]]:
    return [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)]


def _window(size: int, shift: int) -> slice:
    """Rows p of the training image with 0 ≤ p + shift < size (the overlap for that shift)."""
    return slice(max(-shift, 0), size + min(-shift, 0))


def _shifted_copies(x, max_shift: int, out=None):
    """(B, S, 2C·H·W): x shifted by each shift, zero outside the image; `out`, an earlier call's buffer, reused."""
    import torch

    b, c, h, w = x.shape
    if out is None or len(out) < b:
        out = torch.zeros(b, len(_shifts(max_shift)), c, h, w)
    out = out[:b]
    for s, (dy, dx) in enumerate(_shifts(max_shift)):
        out[:, s, :, _window(h, dy), _window(w, dx)] = x[..., _window(h, -dy), _window(w, -dx)]
    return out


def _window_sums_of_squares(y, max_shift: int):
    """(M, S): Σ y² over the overlap window of each shift, for prepared images y (M, C, H, W)."""
    import torch

    h, w = y.shape[-2:]
    masks = torch.zeros(len(_shifts(max_shift)), h, w)
    for s, (dy, dx) in enumerate(_shifts(max_shift)):
        masks[s, _window(h, dy), _window(w, dx)] = 1
    return y.pow(2).sum(dim=1).flatten(1) @ masks.flatten(1).T


def _overlap_sizes(shape, max_shift: int):
    import torch

    c, h, w = shape
    return torch.tensor([c * (h - abs(dy)) * (w - abs(dx)) for dy, dx in _shifts(max_shift)], dtype=torch.float32)


def shift_distances(x, y, max_shift: int = MAX_SHIFT):
    """(B, K) float32 d of prepared test images x (B, C, H, W) to their candidates y (B, K, C, H, W), directly."""
    import torch

    h, w = x.shape[-2:]
    best = torch.full(y.shape[:2], float("inf"))
    for dy, dx in _shifts(max_shift):
        xs = x[:, None, :, _window(h, -dy), _window(w, -dx)]
        ys = y[..., _window(h, dy), _window(w, dx)]
        torch.minimum(best, (xs - ys).pow_(2).mean(dim=(2, 3, 4)).sqrt_(), out=best)
    return best


def thumbnails(images, side: int = THUMBNAIL, chunk: int = 1024):
    """(N, C·side²) float32: average-pooled to side×side, standardised, unit norm (dot = correlation)."""
    import torch
    import torch.nn.functional as F

    n, c = images.shape[:2]
    out = torch.empty(n, c * side * side)
    for start in range(0, n, chunk):
        x = torch.as_tensor(np.ascontiguousarray(images[start:start + chunk])).float()
        t = _standardize_rows(F.adaptive_avg_pool2d(x, side).flatten(1))
        out[start:start + chunk] = t / math.sqrt(t.shape[1])
    return out


def pixel_candidates(train_images, test_images, k: int, side: int = THUMBNAIL, chunk: int = CHUNK):
    """(N_test, k) int64 tensor: the training images whose thumbnails correlate best with each test image's."""
    import torch

    k = min(k, len(train_images))
    train_t = thumbnails(train_images, side)
    test_t = thumbnails(test_images, side)
    out = torch.empty(len(test_images), k, dtype=torch.int64)
    sims = torch.empty(min(chunk, len(test_images)), len(train_t))  # reused: fresh pages cost system time
    for start in range(0, len(test_images), chunk):
        block = test_t[start:start + chunk]
        torch.mm(block, train_t.T, out=sims[:len(block)])
        out[start:start + chunk] = sims[:len(block)].topk(k, dim=1).indices
    return out


def nearest_by_pixels(train_images, test_images, candidates: int, max_shift: int = MAX_SHIFT,
                      timings: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train_index, distance): each test image's nearest training image by pixel distance among its candidates."""
    import torch

    _check_images(train_images, test_images)
    tic = time.perf_counter()
    cands = pixel_candidates(train_images, test_images, candidates)
    t_candidates = time.perf_counter()
    train_flat, train_sq = _prepare_training(train_images, max_shift)
    sizes = _overlap_sizes((2 * train_images.shape[1], *train_images.shape[2:]), max_shift)
    index = np.empty(len(test_images), np.int64)
    dist = np.empty(len(test_images), np.float32)
    buffer = None
    gathered = torch.empty(REFINE_BLOCK * cands.shape[1], train_flat.shape[1], dtype=train_flat.dtype)
    y = torch.empty(gathered.shape)  # both reused across blocks: fresh pages cost system time
    for start in range(0, len(test_images), REFINE_BLOCK):
        c = cands[start:start + REFINE_BLOCK]
        x = prepare(test_images[start:start + REFINE_BLOCK])
        buffer = _shifted_copies(x, max_shift, buffer)
        xs = buffer[:len(x)].flatten(2)  # (B, S, n)
        m = c.numel()
        torch.index_select(train_flat, 0, c.flatten(), out=gathered[:m])
        y[:m].copy_(gathered[:m])
        xsq = _window_sums_of_squares(x, max_shift).flip(-1)  # x's window for shift s is y's for -s
        d2 = (xsq[:, None, :] + train_sq[c] - 2 * torch.bmm(y[:m].view(*c.shape, -1), xs.transpose(1, 2))) / sizes
        winner = c.gather(1, d2.min(dim=2).values.argmin(dim=1)[:, None])[:, 0]
        index[start:start + len(c)] = winner.numpy()
        dist[start:start + len(c)] = _direct_distance(x, train_images, winner, max_shift)
    if timings is not None:
        timings.update(candidates=t_candidates - tic, exact_on_candidates=time.perf_counter() - t_candidates)
    return index, dist


def _direct_distance(x, train_images, winner, max_shift: int) -> np.ndarray:
    """d from prepared test images x to their chosen training images, in float32 directly (copies: 0)."""
    y = prepare(train_images[winner.numpy()])
    return shift_distances(x, y[:, None], max_shift)[:, 0].numpy()


def exact_nearest_by_pixels(train_images, test_images, max_shift: int = MAX_SHIFT, chunk: int = 64,
                            train_chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """The same search by brute force over every training image, for checking (about 0.1 s per test image)."""
    import torch

    _check_images(train_images, test_images)
    train_flat, train_sq = _prepare_training(train_images, max_shift)  # (M, n) float16, (M, S)
    sizes = _overlap_sizes((2 * train_images.shape[1], *train_images.shape[2:]), max_shift)
    index = np.empty(len(test_images), np.int64)
    dist = np.empty(len(test_images), np.float32)
    for start in range(0, len(test_images), chunk):
        x = prepare(test_images[start:start + chunk])
        xs = _shifted_copies(x, max_shift).flatten(2)  # (B, S, n)
        b, s = xs.shape[:2]
        xsq = xs.pow(2).sum(-1)[:, :, None]
        best_d2 = torch.full((b,), float("inf"))
        best_i = torch.zeros(b, dtype=torch.int64)
        for t0 in range(0, len(train_flat), train_chunk):
            y = train_flat[t0:t0 + train_chunk].float()
            cross = (xs.reshape(b * s, -1) @ y.T).view(b, s, -1)
            d2 = (xsq + train_sq[t0:t0 + train_chunk].T[None] - 2 * cross) / sizes[None, :, None]
            value, arg = d2.min(dim=1).values.min(dim=1)
            better = value < best_d2
            best_d2 = torch.where(better, value, best_d2)
            best_i = torch.where(better, arg + t0, best_i)
        index[start:start + b] = best_i.numpy()
        dist[start:start + b] = _direct_distance(x, train_images, best_i, max_shift)
    return index, dist


def nearest_by_features(train_features, test_features, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Nearest training image of each test image by cosine similarity of feature rows (N, D): (index, cosine)."""
    import torch
    import torch.nn.functional as F

    train = F.normalize(torch.as_tensor(np.asarray(train_features, np.float32)), dim=1)
    test = F.normalize(torch.as_tensor(np.asarray(test_features, np.float32)), dim=1)
    index = np.empty(len(test), np.int64)
    cosine = np.empty(len(test), np.float32)
    sims = torch.empty(min(chunk, len(test)), len(train))  # reused: fresh pages cost system time
    for start in range(0, len(test), chunk):
        block = test[start:start + chunk]
        value, arg = torch.mm(block, train.T, out=sims[:len(block)]).max(dim=1)
        index[start:start + chunk] = arg.numpy()
        cosine[start:start + chunk] = value.numpy()
    return index, cosine


def low_outlier_threshold(distances, k: float) -> tuple[float, dict]:
    """The rule of the module docstring: exp(median − k · 1.4826 · MAD) of the log distances, and its parts."""
    d = np.asarray(distances, np.float64)
    if d.ndim != 1 or len(d) < MIN_TEST_IMAGES:
        raise ValueError(f"the threshold rule needs at least {MIN_TEST_IMAGES} nearest-neighbour distances, "
                         f"found {d.size}")
    if not np.isfinite(d).all() or (d < 0).any():
        raise ValueError("distances must be finite and non-negative")
    log_d = np.log(np.maximum(d, DISTANCE_FLOOR))
    median = float(np.median(log_d))
    robust_sd = MAD_TO_SD * float(np.median(np.abs(log_d - median)))
    threshold = float(np.exp(median - k * robust_sd))
    details = {"k": float(k), "median_distance": float(np.exp(median)), "median_log_distance": median,
               "robust_sd_log_distance": robust_sd}
    return threshold, details


def find_near_duplicates(train_images, test_images, train_features, test_features, k: float,
                         candidates: int, timings: dict | None = None) -> NearDuplicates:
    """Per test image: the nearest training image by pixels and by features, and whether it is a near-duplicate."""
    _check_images(train_images, test_images)
    for name, f, images in (("train", train_features, train_images), ("test", test_features, test_images)):
        if len(f) != len(images):
            raise ValueError(f"{len(f)} {name} feature rows for {len(images)} {name} images")
    if len(test_images) < MIN_TEST_IMAGES:
        raise ValueError(f"the threshold rule needs at least {MIN_TEST_IMAGES} test images, found {len(test_images)}")
    timings = {} if timings is None else timings
    train_index, pixel_distance = nearest_by_pixels(train_images, test_images, candidates, timings=timings)
    tic = time.perf_counter()
    feature_index, feature_cosine = nearest_by_features(train_features, test_features)
    timings["features"] = time.perf_counter() - tic
    threshold, details = low_outlier_threshold(pixel_distance, k)
    return NearDuplicates(train_index, pixel_distance, feature_index, feature_cosine, pixel_distance <= threshold,
                          threshold, rule_text(k), details)


def _load_npz(path, keys: list[str]) -> dict:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            found = sorted(f.files)
            arrays = {key: f[key] for key in keys if key in f.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({type(error).__name__}: {error})") from error
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing {missing} (has {found})")
    return arrays


def _load_pair(images_npz, features_npz) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = _load_npz(images_npz, ["images", "labels"])
    features = _load_npz(features_npz, ["features", "labels"])
    img, lab, feat = images["images"], images["labels"], features["features"]
    if img.ndim != 4 or img.dtype != np.uint8 or len(img) == 0:
        raise ValueError(f"{images_npz}: 'images' must be uint8 (N, C, H, W), N > 0, found {img.dtype} {img.shape}")
    if lab.shape != (len(img),):
        raise ValueError(f"{images_npz}: {lab.shape} labels for {len(img)} images")
    if feat.ndim != 2 or not np.issubdtype(feat.dtype, np.floating):
        raise ValueError(f"{features_npz}: 'features' must be float (N, D), found {feat.dtype} {feat.shape}")
    if not np.isfinite(feat).all():
        raise ValueError(f"{features_npz}: 'features' has non-finite values")
    if len(feat) != len(img):
        raise ValueError(f"{features_npz} has {len(feat)} feature rows but {images_npz} has {len(img)} images: "
                         "the features were not computed from these images")
    if features["labels"].shape != lab.shape or not np.array_equal(features["labels"], lab):
        differ = int(np.sum(features["labels"] != lab)) if features["labels"].shape == lab.shape else len(lab)
        raise ValueError(f"the labels of {features_npz} and {images_npz} differ ({differ} of {len(lab)} rows): "
                         "the features were not computed from these images, or not in this order")
    return img, lab, feat


def write_near_duplicates(train_images_npz, test_images_npz, train_features_npz, test_features_npz,
                          out_tsv, k: float, candidates: int, summary_json=None) -> dict:
    """Find the near-duplicates, write `out_tsv` (COLUMNS), return a summary; refuses mismatched feature files."""
    tic = time.perf_counter()
    train_img, train_lab, train_feat = _load_pair(train_images_npz, train_features_npz)
    test_img, test_lab, test_feat = _load_pair(test_images_npz, test_features_npz)
    if train_img.shape[1:] != test_img.shape[1:]:
        raise ValueError(f"{train_images_npz} holds {train_img.shape[1:]} images but {test_images_npz} "
                         f"{test_img.shape[1:]}")
    if train_feat.shape[1] != test_feat.shape[1]:
        raise ValueError(f"{train_features_npz} has {train_feat.shape[1]}-d features but {test_features_npz} "
                         f"{test_feat.shape[1]}-d")
    if len(test_img) < MIN_TEST_IMAGES:
        raise ValueError(f"{test_images_npz}: {len(test_img)} test images; the threshold rule needs at least "
                         f"{MIN_TEST_IMAGES}")
    seconds = {"load": time.perf_counter() - tic}
    result = find_near_duplicates(train_img, test_img, train_feat, test_feat, k=k, candidates=candidates,
                                  timings=seconds)
    tic_write = time.perf_counter()
    write_tsv(out_tsv, COLUMNS, ([i, result.train_index[i], float(result.pixel_distance[i]), result.feature_index[i],
                                  float(result.feature_cosine[i]), int(result.flagged[i])] for i in range(len(test_img))))
    seconds["write"] = time.perf_counter() - tic_write
    seconds["total"] = time.perf_counter() - tic
    flagged = result.flagged
    summary = {"threshold": result.threshold, "rule": result.rule, **result.threshold_details,
            "n_test": int(len(test_img)), "n_train": int(len(train_img)), "n_flagged": result.n_flagged,
            "n_flagged_other_label": int((train_lab[result.train_index[flagged]] != test_lab[flagged]).sum()),
            "n_flagged_feature_agrees": int((result.feature_index[flagged] == result.train_index[flagged]).sum()),
            "seconds": {key: round(value, 3) for key, value in seconds.items()}}
    if summary_json is not None:
        write_json(summary_json, summary)
    print(f"{summary['n_flagged']} of {summary['n_test']} test images have a near-duplicate in the training set "
          f"(pixel distance <= {summary['threshold']:.3g}); {summary['seconds']['total']:.1f} s")
    return summary


def read_near_duplicates(path) -> list[dict]:
    """A near_duplicates.tsv back as one dict per row, numbers parsed; refuses a malformed file, naming it."""
    rows = read_table(path, COLUMNS)
    try:
        return [{c: kind(cell) for c, kind, cell in zip(COLUMNS, _COLUMN_TYPES, row)} for row in rows]
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
