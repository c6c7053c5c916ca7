"""Train–test near-duplicates on tiny synthetic data with planted copies and same-class look-alikes."""

from functools import partial

import numpy as np
import pytest

from cmpt726.analysis import near_duplicates as nd
from cmpt726.config import schema_default
from cmpt726.report.summarize_analyses import duplicate_numbers, matched_accuracy

# A run's settings (the schema's defaults): the search takes them as arguments.
SETTINGS = {"k": schema_default("analysis.near_duplicates.mad_k"),
            "candidates": schema_default("analysis.near_duplicates.candidates")}
find_near_duplicates = partial(nd.find_near_duplicates, **SETTINGS)
write_near_duplicates = partial(nd.write_near_duplicates, **SETTINGS)
nearest_by_pixels = partial(nd.nearest_by_pixels, candidates=SETTINGS["candidates"])
low_outlier_threshold = partial(nd.low_outlier_threshold, k=SETTINGS["k"])

N_TRAIN, N_TEST, N_CLASSES = 600, 200, 10


def make_images(rng, templates, n):
    """(n, 3, 32, 32) uint8 and labels: 60% the class's 8×8 colour template, 40% its own 8×8 pattern, upsampled ×4,
    plus noise (sd 6): same-class images are look-alikes, never copies."""
    labels = rng.integers(0, N_CLASSES, n)
    coarse = 0.6 * templates[labels] + 0.4 * rng.uniform(0, 255, (n, 3, 8, 8))
    images = coarse.repeat(4, axis=2).repeat(4, axis=3) + rng.normal(0, 6, (n, 3, 32, 32))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


def shift_one_pixel(image, axis):
    """Move a (C, H, W) picture one pixel down (axis 1) or right (axis 2), repeating the first row/column."""
    first = np.take(image, [0], axis=axis)
    rest = np.take(image, np.arange(image.shape[axis] - 1), axis=axis)
    return np.concatenate([first, rest], axis=axis)


def features_of(images, seed=1):
    projection = np.random.default_rng(seed).standard_normal((images[0].size, 64)).astype(np.float32)
    return (images.reshape(len(images), -1).astype(np.float32) / 255) @ projection


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(726)
    templates = rng.uniform(0, 255, (N_CLASSES, 3, 8, 8))
    train, train_labels = make_images(rng, templates, N_TRAIN)
    fresh, fresh_labels = make_images(rng, templates, N_TEST)

    test, test_labels = fresh.copy(), fresh_labels.copy()
    twins = rng.choice(N_TRAIN, 24, replace=False)
    where = rng.choice(N_TEST, 24, replace=False)
    kinds = np.repeat(["exact", "noise", "shift", "brightness"], 6)
    for twin, position, kind in zip(twins, where, kinds):
        image = train[twin].astype(np.int16)
        if kind == "noise":
            image = image + rng.integers(-3, 4, image.shape)
        elif kind == "shift":
            image = shift_one_pixel(image, axis=1 + position % 2)
        elif kind == "brightness":
            image = 0.75 * image + 40
        test[position] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        test_labels[position] = train_labels[twin]
    return {"train": train, "train_labels": train_labels, "fresh": fresh, "fresh_labels": fresh_labels,
            "test": test, "test_labels": test_labels, "twins": twins, "where": where, "kinds": kinds}


def search(data, test="test"):
    return find_near_duplicates(data["train"], data[test], features_of(data["train"]), features_of(data[test]))


def test_copies_are_flagged_exactly_with_their_training_twins(data):
    result = search(data)
    assert sorted(np.flatnonzero(result.flagged)) == sorted(data["where"]) and result.n_flagged == 24
    assert list(result.train_index[data["where"]]) == list(data["twins"])
    exact = data["where"][data["kinds"] == "exact"]
    assert np.all(result.pixel_distance[exact] == 0)
    # the threshold separates: every copy below, every ordinary image well above
    others = np.setdiff1d(np.arange(N_TEST), data["where"])
    assert result.pixel_distance[data["where"]].max() <= result.threshold < result.pixel_distance[others].min()
    # ... and comes from the data: exp(median − 8 robust sd) of the log nearest-neighbour distances
    log_d = np.log(np.maximum(result.pixel_distance, nd.DISTANCE_FLOOR))
    median = np.median(log_d)
    assert result.threshold == pytest.approx(np.exp(median - 8 * 1.4826 * np.median(np.abs(log_d - median))))
    assert result.threshold_details["k"] == 8 and "median" in result.rule
    # features of an exact copy are identical: its nearest by cosine is the twin, at cosine 1
    assert list(result.feature_index[exact]) == list(data["twins"][data["kinds"] == "exact"])
    assert np.allclose(result.feature_cosine[exact], 1, atol=1e-5)


def test_same_class_look_alikes_without_copies_are_not_flagged(data):
    result = search(data, "fresh")
    assert result.n_flagged == 0
    # they are look-alikes: the nearest training image is of the same class, yet far above the threshold
    assert np.mean(data["train_labels"][result.train_index] == data["fresh_labels"]) > 0.9
    assert result.pixel_distance.min() > 1.2 * result.threshold


def test_two_stage_search_agrees_with_brute_force(data):
    train, test = data["train"], data["test"]
    exact_index, exact_distance = nd.exact_nearest_by_pixels(train, test)
    fast_index, fast_distance = nearest_by_pixels(train, test)
    assert list(exact_index[data["where"]]) == list(data["twins"])
    assert list(fast_index[data["where"]]) == list(exact_index[data["where"]])
    assert np.all(fast_distance >= exact_distance - 1e-5)  # the fast search can only miss, never undercut
    assert np.mean(fast_index == exact_index) > 0.9
    # with every training image a candidate, the two are the same search
    all_index, all_distance = nearest_by_pixels(train, test, candidates=len(train))
    assert np.array_equal(all_index, exact_index)
    assert np.allclose(all_distance, exact_distance, atol=1e-5)


def test_distance_ignores_brightness_and_one_pixel_shifts_but_not_more(data):
    image = data["train"][:1]

    def distance(other):
        return float(nearest_by_pixels(image, other[None].astype(np.uint8))[1][0])

    x = image[0].astype(np.float64)
    assert distance(image[0]) == 0
    assert distance(np.clip(np.rint(0.5 * x + 60), 0, 255)) < 0.02  # rounding to uint8 is all that differs
    assert distance(np.roll(image[0], 1, axis=1)) < 0.15  # down by one: the wrapped row is all that differs
    assert distance(np.roll(image[0], -1, axis=2)) < 0.15  # left by one
    assert distance(np.roll(image[0], 2, axis=2)) > 0.4  # two pixels: no longer a near-copy
    assert distance(data["fresh"][0]) > 0.6  # an unrelated image


def test_threshold_rule_is_median_minus_k_robust_sd_in_log_space():
    rng = np.random.default_rng(0)
    body = np.exp(rng.normal(0, 0.1, 1000))  # log-normal ordinary distances, sd 0.1
    distances = np.concatenate([body, [0.0, 0.2, 0.3]])
    threshold, details = low_outlier_threshold(distances, k=8)
    log_d = np.log(np.maximum(distances, 1e-4))
    mad = np.median(np.abs(log_d - np.median(log_d)))
    assert threshold == pytest.approx(np.exp(np.median(log_d) - 8 * 1.4826 * mad))
    assert details["robust_sd_log_distance"] == pytest.approx(0.1, rel=0.1)  # MAD·1.4826 finds the sd
    assert np.flatnonzero(distances <= threshold).tolist() == [1000, 1001, 1002]
    assert low_outlier_threshold(distances, k=5)[0] > threshold
    with pytest.raises(ValueError, match="at least 10"):
        low_outlier_threshold(distances[:9])
    with pytest.raises(ValueError, match="non-negative"):
        low_outlier_threshold(np.r_[body, -1.0])


def test_feature_search_is_cosine_not_euclidean():
    train = np.array([[1, 0], [10, 1], [0, 1]], np.float32)
    test = np.array([[2, 0.1], [0, 5]], np.float32)
    index, cosine = nd.nearest_by_features(train, test)
    assert index.tolist() == [1, 2]  # [10, 1] is far in Euclidean terms but nearly parallel to [2, 0.1]
    assert cosine[1] == pytest.approx(1)


def save(folder, data):
    paths = {name: folder / f"{name}.npz" for name in ["train", "test", "train_features", "test_features"]}
    classes = np.array([f"class{i}" for i in range(N_CLASSES)])
    for split in ("train", "test"):
        images, labels = data[split], data[f"{split}_labels"]
        np.savez(paths[split], images=images, labels=labels, classes=classes)
        np.savez(paths[f"{split}_features"], features=features_of(images), labels=labels, classes=classes)
    return paths


def write(paths, out):
    return write_near_duplicates(*(paths[k] for k in ("train", "test", "train_features", "test_features")), out)


def test_write_near_duplicates_writes_one_row_per_test_image(tmp_path, data):
    paths = save(tmp_path, data)
    out = tmp_path / "out" / "near_duplicates.tsv"
    summary = write(paths, out)
    lines = out.read_text().splitlines()
    assert lines[0].split("\t") == ["index", "train_index", "pixel_distance", "feature_index", "feature_cosine",
                                    "flagged"]
    table = np.loadtxt(out, delimiter="\t", skiprows=1)
    assert table.shape == (N_TEST, 6) and table[:, 0].tolist() == list(range(N_TEST))
    assert np.flatnonzero(table[:, 5] == 1).tolist() == sorted(data["where"])
    assert table[data["where"], 1].astype(int).tolist() == list(data["twins"])
    assert set(np.unique(table[:, 5])) == {0, 1}
    expected = search(data)
    assert summary["threshold"] == pytest.approx(expected.threshold) and summary["rule"] == expected.rule
    assert (summary["n_flagged"], summary["n_test"], summary["n_train"]) == (24, N_TEST, N_TRAIN)
    assert summary["n_flagged_other_label"] == 0 and summary["seconds"]["total"] > 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["near_duplicates.tsv"]  # no temporary left over


def cut_test_features(paths, data):
    with np.load(paths["test_features"]) as f:
        np.savez(paths["test_features"], features=f["features"][:-1], labels=f["labels"][:-1], classes=f["classes"])


def relabel_train_features(paths, data):
    with np.load(paths["train_features"]) as f:
        labels = f["labels"].copy()
        labels[[0, 1]] = (labels[[0, 1]] + 1) % N_CLASSES
        np.savez(paths["train_features"], features=f["features"], labels=labels, classes=f["classes"])


@pytest.mark.parametrize("spoil, error, names", [
    (cut_test_features, ValueError, ["test", "test_features"]),  # feature rows that do not match the images
    (relabel_train_features, ValueError, ["train", "train_features"]),  # labels that differ between the two
    (lambda paths, data: paths["train"].unlink(), FileNotFoundError, ["train"]),
    (lambda paths, data: paths["test_features"].write_bytes(b"not an npz file"), ValueError, ["test_features"]),
    (lambda paths, data: np.savez(paths["test"], pictures=data["test"], labels=data["test_labels"]), ValueError,
     ["test"]),
], ids=["test features cut short", "train labels changed", "train missing", "test features unreadable",
        "test without images"])
def test_refuses_bad_inputs_naming_the_files(tmp_path, data, spoil, error, names):
    paths = save(tmp_path, data)
    spoil(paths, data)
    out = tmp_path / "near_duplicates.tsv"
    old = "old\tcontent\n"
    out.write_text(old)
    with pytest.raises(error) as caught:
        write(paths, out)
    for name in names:
        assert str(paths[name]) in str(caught.value), (name, caught.value)
    assert out.read_text() == old  # the previous output is untouched ...
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # ... and nothing half-written


def test_pure_function_refuses_mismatched_rows_and_too_few_test_images(data):
    train, test = data["train"], data["test"]
    with pytest.raises(ValueError, match="feature rows"):
        find_near_duplicates(train, test, features_of(train)[:-1], features_of(test))
    with pytest.raises(ValueError, match="at least 10"):
        find_near_duplicates(train, test[:5], features_of(train), features_of(test[:5]))
    with pytest.raises(ValueError, match="but test images"):
        nearest_by_pixels(train, test[:, :, :16])


def test_read_near_duplicates_gives_back_what_was_written_and_refuses_a_bad_file(tmp_path, data):
    paths = save(tmp_path, data)
    out = tmp_path / "near_duplicates.tsv"
    write(paths, out)
    rows = nd.read_near_duplicates(out)
    table = np.loadtxt(out, delimiter="\t", skiprows=1)
    assert [list(r) for r in map(dict.keys, rows)] == [nd.COLUMNS] * N_TEST
    assert np.allclose([[r[c] for c in nd.COLUMNS] for r in rows], table)
    assert all(isinstance(r["train_index"], int) and r["flagged"] in (0, 1) for r in rows)
    assert [r["index"] for r in rows if r["flagged"]] == sorted(data["where"])

    lines = out.read_text().splitlines()
    bad_header = tmp_path / "bad_header.tsv"
    bad_header.write_text("\n".join(["index\ttwin", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=f"{bad_header}: header"):
        nd.read_near_duplicates(bad_header)
    bad_cell = tmp_path / "bad_cell.tsv"
    cells = lines[1].split("\t")
    cells[1] = "x"
    bad_cell.write_text("\n".join([lines[0], "\t".join(cells), *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match=f"{bad_cell}: .*'x'"):
        nd.read_near_duplicates(bad_cell)


def test_ease_control_explains_a_gain_that_is_only_ease():
    """Flagged images drawn from the easy end: a model right with probability = ease gains many points on them,
    all of which the matched control explains; a model 10 points below its ease on flagged images shows -10."""
    rng = np.random.default_rng(0)
    n = 20_000
    ease = rng.beta(4, 1, n)  # the reference model's probability of the given label
    flagged = np.zeros(n, dtype=bool)
    flagged[rng.choice(np.flatnonzero(ease > 0.9), 400, replace=False)] = True
    only_ease = rng.random((3, n)) < ease
    worse = rng.random((3, n)) < np.where(flagged, ease - 0.1, ease)  # 10 points below its ease on flagged images
    labels = np.zeros(n, dtype=np.int64)
    probs = np.stack([ease, 1 - ease], axis=1)

    def scores(hit):
        return [{"pred": np.where(h, 0, 1), "probs": probs} for h in hit]

    table = [{"flagged": f, "pixel_distance": 0.1, "index": i, "train_index": i} for i, f in enumerate(flagged)]
    summary = {k: 0 for k in ("threshold", "rule", "n_test", "n_train", "n_flagged", "n_flagged_other_label",
                              "n_flagged_feature_agrees", "seconds")}
    numbers = duplicate_numbers(table, summary, {"ref": scores(only_ease), "worse": scores(worse)}, labels, "ref")
    ref = numbers["variants"]["ref"]
    assert numbers["ease_variant"] == "ref"
    assert ref["difference"] > 10                 # flagged images look far easier...
    assert abs(ref["beyond_ease"]) < 2            # ...and ease explains it
    assert numbers["variants"]["worse"]["beyond_ease"] == pytest.approx(-10, abs=2.5)
    assert ref["matched"] == pytest.approx(matched_accuracy(only_ease, flagged, ease))
    # Without a frozen-feature variant there is no control.
    assert duplicate_numbers(table, summary, {"ref": scores(only_ease)}, labels)["variants"]["ref"]["matched"] is None
