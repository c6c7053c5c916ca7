"""Files the workflow reads back are held to what it writes (docs/threat-model.md): a score file, a metrics file,
a backbone and CIFAR-10H's counts that are out of range are refused naming the file and the field."""

import json
import shutil
import socket
from collections import namedtuple

import numpy as np
import pdfkit
import pytest
from conftest import CLASSES, run_python

from cmpt726 import models
from cmpt726.analysis.human_labels import load_counts
from cmpt726.evaluation import read_metrics, read_scores, summarize, write_scores
from cmpt726.report import render
from cmpt726.report.compare_variants import read_train_summary


def scores_file(tmp_path, cell=None, value=None):
    """A score file of 20 images; with `cell`, that cell of image 2's row set to `value`."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), 20)
    path = tmp_path / "seed0.tsv"
    write_scores(path, rng.integers(0, 10, 20), probs, np.ones(20))
    if cell is not None:
        lines = path.read_text().splitlines()
        cells = lines[3].split("\t")
        cells[cell] = value
        lines[3] = "\t".join(cells)
        path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("cell, value, column", [(4, "nan", "p0..p9"), (5, "inf", "p0..p9"), (6, "-0.5", "p0..p9"),
                                                 (2, "10", "pred"), (1, "-1", "label"), (3, "nan", "loss")])
def test_a_score_file_out_of_range_is_refused_naming_the_column(tmp_path, cell, value, column):
    assert len(read_scores(scores_file(tmp_path))["pred"]) == 20
    with pytest.raises(ValueError, match=rf"seed0.tsv: column {column.replace('.', '[.]')} out of range in 1 rows "
                                         r"\(first: image 2\)"):
        read_scores(scores_file(tmp_path, cell, value))


@pytest.mark.parametrize("edit, field", [
    (lambda m: m.update(accuracy=float("nan")), "accuracy"), (lambda m: m.update(accuracy=101), "accuracy"),
    (lambda m: m["per_class_accuracy"].update(cat=-3), "per_class_accuracy"),
    (lambda m: m["confusion"][0].__setitem__(0, -1), "confusion"), (lambda m: m.pop("confusion"), "missing"),
])
def test_a_metrics_file_out_of_range_is_refused_naming_the_field(tmp_path, edit, field):
    labels = np.arange(20) % 10
    metrics = summarize(labels, np.eye(10)[labels], CLASSES)
    path = tmp_path / "seed0.json"
    path.write_text(json.dumps(metrics))
    assert read_metrics(path)["accuracy"] == 100.0
    edit(metrics)
    path.write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match=rf"seed0.json: field {field}"):
        read_metrics(path)


@pytest.mark.parametrize("key, value, message", [
    ("conv1.weight", float("nan"), "conv1.weight holds a NaN or infinity"),
    ("bn1.running_var", -1.0, "bn1.running_var holds a negative BatchNorm variance"),
])
def test_a_backbone_with_nan_weights_or_negative_variances_is_refused(key, value, message):
    state = models.cifar_resnet20(100).state_dict()
    assert models.check_backbone_state(state, "backbone.pt") is state
    state[key].view(-1)[0] = value
    with pytest.raises(ValueError, match=f"backbone.pt: {message}"):
        models.check_backbone_state(state, "backbone.pt")


def test_cifar10h_counts_that_would_overflow_are_refused(tmp_path):
    counts = np.full((5, 10), 5, dtype=np.uint64)
    np.save(tmp_path / "ok.npy", counts)
    assert load_counts(tmp_path / "ok.npy").sum() == 250
    counts[3, 2] = np.iinfo(np.uint64).max
    np.save(tmp_path / "huge.npy", counts)
    with pytest.raises(ValueError, match=r"huge.npy: counts above 1,000,000 in 1 rows \(first: row 3\)"):
        load_counts(tmp_path / "huge.npy")


@pytest.mark.skipif(shutil.which("wkhtmltopdf") is None, reason="wkhtmltopdf is not installed")
def test_a_truncated_pdf_is_never_moved_into_place_and_a_full_disk_is_named(tmp_path, monkeypatch):
    """wkhtmltopdf on a full disk: a PDF cut off at 128 KiB with success, or its bare "Command failed"."""
    html = tmp_path / "report.html"
    html.write_text("<html><body><h1>Report</h1></body></html>")
    render.html_to_pdf(html, tmp_path / "whole.pdf")
    assert (tmp_path / "whole.pdf").read_bytes().startswith(b"%PDF")
    real = pdfkit.from_file

    def cut_off(source, out, **kwargs):
        real(source, out, **kwargs)
        with open(out, "r+b") as fh:
            fh.truncate(300)
        return True

    monkeypatch.setattr(pdfkit, "from_file", cut_off)
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 0))
    with pytest.raises(RuntimeError, match=r"report.pdf incomplete \(300 bytes.*the disk holding .* is full \(0 MB"):
        render.html_to_pdf(html, tmp_path / "report.pdf")

    def fails(source, out, **kwargs):
        raise OSError("wkhtmltopdf reported an error:\nExit with code 1 due to network error: Command failed")

    monkeypatch.setattr(pdfkit, "from_file", fails)
    with pytest.raises(RuntimeError, match=r"(?s)could not write .*report.pdf: .*Command failed; the disk holding"):
        render.html_to_pdf(html, tmp_path / "report.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "whole.pdf"]


@pytest.fixture
def stalled_server():
    """A local server that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("what, key", [("cifar10", "data.cifar10.root"), ("backbone", "backbone.source")])
def test_a_stalled_download_fails_in_time_naming_the_url_and_key(tmp_path, stalled_server, what, key):
    """In a subprocess given a minute: without a timeout the download would wait for ever."""
    call = (f"data.download_cifar10({str(tmp_path / 'c10' / 'cifar-10-batches-py')!r}, url='{stalled_server}/c.tgz')"
            if what == "cifar10" else
            f"backbone.download_backbone('{stalled_server}/r20-8412cc70.pth', {str(tmp_path / 'b.pt')!r})")
    code = f"from cmpt726 import backbone, data, files\nfiles.DOWNLOAD_TIMEOUT = 2.0\n{call}"
    proc = run_python(code, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "OSError" in proc.stderr
    assert stalled_server in proc.stderr and key in proc.stderr
    assert not (tmp_path / "b.pt").exists() and not (tmp_path / "c10" / "cifar-10-batches-py").exists()


@pytest.mark.parametrize("name, read", [("seed0.json", read_metrics), ("seed0.train.json", None)])
def test_a_truncated_json_file_is_refused_naming_it(tmp_path, name, read):
    path = tmp_path / name
    path.write_text('{"accuracy": 50.0, "conf')
    with pytest.raises(ValueError, match=rf"{name}: not a JSON file"):
        (read or read_train_summary)(path)
