"""CIFAR-10 reading and preparation: the real pickle format, checks, subsets, and the real data set."""

import pickle
import subprocess
import sys
import time

import numpy as np
import pytest

from cmpt726 import cifar, cifar100, data
from conftest import SHARED_DATA, Payload, write_cifar10
from test_pretrain import write_cifar100


@pytest.fixture
def tiny(tmp_path):
    return write_cifar10(tmp_path / "c10", n_train=53, n_test=20, seed=3)


def prepare(folder, out, verify=False, **subset):
    return data.prepare_cifar10(folder, out / "train.npz", out / "test.npz", out / "s.json", verify=verify, **subset)


def test_prepare_reads_every_batch_in_order(tiny, tmp_path):
    summary = prepare(tiny, tmp_path)
    images, labels, classes = data.load_arrays(tmp_path / "train.npz")
    assert images.shape == (53, 3, 32, 32) and images.dtype == np.uint8
    first = pickle.load(open(tiny / "data_batch_1", "rb"), encoding="latin1")
    last = pickle.load(open(tiny / "data_batch_5", "rb"), encoding="latin1")
    assert np.array_equal(images[0].reshape(-1), first["data"][0])  # rows are R, G, B planes of 32×32
    assert np.array_equal(labels[-len(last["labels"]):], last["labels"])
    assert classes[0] == "airplane" and len(classes) == 10
    assert summary["train"]["images"] == 53 and summary["test"]["images"] == 20
    assert sum(summary["test"]["per_class"]) == 20


def _first_with_every_class(labels) -> int:
    return next(n for n in range(1, len(labels) + 1) if len(set(labels[:n].tolist())) == 10)


def test_subset_takes_the_first_images_and_refuses_too_many(tiny, tmp_path):
    full, train_labels = cifar.read_split(tiny, cifar.CIFAR10, "train", verify=False)
    n_train = _first_with_every_class(train_labels)
    prepare(tiny, tmp_path / "a", subset_train=n_train)
    assert np.array_equal(data.load_arrays(tmp_path / "a" / "train.npz")[0], full[:n_train])
    with pytest.raises(ValueError, match=rf"data\.subset\.train: the first {n_train - 1} images leave out the classes"):
        prepare(tiny, tmp_path / "b", subset_train=n_train - 1)
    with pytest.raises(ValueError, match=r"data\.subset\.test: 21 is more than the 20"):
        prepare(tiny, tmp_path / "c", subset_test=21)
    assert not (tmp_path / "c" / "test.npz").exists()


def test_verify_names_the_file_whose_md5_is_wrong(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"data_batch_1: md5 [0-9a-f]{32} is not the official c99cafc1"):
        prepare(tiny, tmp_path, verify=True)
    assert not (tmp_path / "train.npz").exists()


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b.update(data=b["data"][:, :100]), r"must be uint8 of shape \(N, 3072\)"),
    (lambda b: b.update(labels=b["labels"][:-1]), "labels for"),
    (lambda b: b.update(labels=[11] * len(b["labels"])), r"labels must lie in 0\.\.9"),
    (lambda b: b.pop("labels"), "needs 'data' and 'labels'"),
    (lambda b: b.pop("data"), "needs 'data' and 'labels'"),
    (lambda b: b.update(data=b["data"].astype(np.float32)), r"must be uint8 of shape \(N, 3072\), found float32"),
    (lambda b: b.update(labels=["cat"] * len(b["labels"])), "must be a list of integers"),
])
def test_malformed_batches_are_named(tiny, mutate, message):
    path = tiny / "data_batch_2"
    batch = pickle.load(open(path, "rb"), encoding="latin1")
    mutate(batch)
    pickle.dump(batch, open(path, "wb"))
    with pytest.raises(ValueError, match=f"data_batch_2.*{message}|{message}"):
        cifar.read_split(tiny, cifar.CIFAR10, "train", verify=False)


def test_not_a_pickle_is_named(tiny):
    (tiny / "test_batch").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="test_batch is not a CIFAR python pickle"):
        cifar.read_split(tiny, cifar.CIFAR10, "test", verify=False)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "restore.py").exists(), reason="../shared/data (the real CIFAR-10) is absent")
def test_real_cifar10_prepares_to_the_official_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    subprocess.run([sys.executable, str(SHARED_DATA / "restore.py"), str(root), "--only", "cifar10"], check=True,
                   capture_output=True)
    out = root / "prepared"
    tic = time.perf_counter()
    summary = data.prepare_cifar10(root / "cifar-10-batches-py", out / "train.npz", out / "test.npz",
                                   out / "summary.json", verify=True)
    print(f"real CIFAR-10 prepare (md5 verified): {time.perf_counter() - tic:.1f} s")
    assert summary["train"] == {"images": 50000, "per_class": [5000] * 10}
    assert summary["test"] == {"images": 10000, "per_class": [1000] * 10}
    assert summary["classes"][:3] == ["airplane", "automobile", "bird"]


@pytest.mark.parametrize("meta, message", [
    ({"num_vis": 3072}, r"batches.meta: needs 'label_names', a list of 10 class names; found keys \['num_vis'\]"),
    ({"label_names": ["a", "b"]}, r"batches.meta: needs 'label_names', a list of 10 class names; found 2 names"),
])
def test_malformed_meta_is_named(tiny, tmp_path, meta, message):
    pickle.dump(meta, open(tiny / "batches.meta", "wb"))
    with pytest.raises(ValueError, match=message):
        prepare(tiny, tmp_path)
    assert not (tmp_path / "s.json").exists()


def test_a_pickle_that_is_not_a_dict_is_named(tiny):
    pickle.dump([1, 2, 3], open(tiny / "data_batch_3", "wb"))
    with pytest.raises(ValueError, match="data_batch_3 is not a CIFAR python pickle \\(a list, not a dict\\)"):
        cifar.read_split(tiny, cifar.CIFAR10, "train", verify=False)


def test_cifar100_meta_without_fine_label_names_is_named(tmp_path):
    folder = write_cifar100(tmp_path)
    pickle.dump({"coarse_label_names": ["x"] * 20}, open(folder / "meta", "wb"))
    with pytest.raises(ValueError, match=r"cifar-100-python/meta: needs 'fine_label_names', a list of 100"):
        cifar.read_classes(folder, cifar.CIFAR100, verify=False)


@pytest.mark.parametrize("dataset, name, key", [
    ("cifar10", "data_batch_2", "data"), ("cifar10", "test_batch", "labels"), ("cifar10", "batches.meta", "label_names"),
    ("cifar100", "train", "data"), ("cifar100", "test", "fine_labels"), ("cifar100", "meta", "fine_label_names"),
])
def test_a_payload_in_any_cifar_file_is_refused_without_running(tmp_path, dataset, name, key):
    """verify: false reads any folder in the format, so the reader itself must run no code."""
    folder = write_cifar10(tmp_path / "c10", n_train=20, n_test=10) if dataset == "cifar10" else write_cifar100(tmp_path)
    with open(folder / name, "rb") as fh:
        content = pickle.load(fh)
    marker = tmp_path / "pwned"
    content[key] = Payload(marker)
    with open(folder / name, "wb") as fh:
        pickle.dump(content, fh, protocol=2)
    with pytest.raises(ValueError, match=rf"{name} is not a CIFAR python pickle .*names posix\.mkdir.*refused"):
        if dataset == "cifar10":
            prepare(folder, tmp_path)
        else:
            cifar100.prepare_cifar100(folder, "pickle", tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "s.json",
                                      verify=False)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_the_safe_reader_reads_numpy_pickles_of_every_protocol(tmp_path, protocol):
    batch = {"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), "labels": np.array([3, 9]),
             "n": np.int64(7), "name": b"training batch", "filenames": ["a.png", "b.png"]}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    images, labels = cifar.read_data_file(path, cifar.CIFAR10)
    assert np.array_equal(images.reshape(2, -1), batch["data"]) and labels.tolist() == [3, 9]
    assert cifar.unpickle(path, cifar.CIFAR10)["name"] == b"training batch"
