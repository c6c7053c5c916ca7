"""Assemble the report: results files → a jinja2 context → one self-contained HTML → PDF."""

import base64
import datetime as dt
import mimetypes
import platform
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
from markupsafe import Markup

from ..files import read_json, read_tsv, write_text
from ..text import fmt, signed


def data_uri(path) -> str:
    """Embed a file (figure) so the HTML stands alone."""
    mime = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def load_outputs(paths) -> dict:
    """A rule's outputs for a template: JSON → `numbers`, PNG/SVG → `figures[stem]`, TSV → `tables[stem]`."""
    section = {"numbers": {}, "figures": {}, "tables": {}}
    for path in map(Path, paths):
        if path.suffix == ".json":
            section["numbers"].update(read_json(path))
        elif path.suffix in (".png", ".svg", ".jpg"):
            section["figures"][path.stem] = data_uri(path)
        elif path.suffix == ".tsv":
            section["tables"][path.stem] = read_tsv(path)
    return section


def provenance(config_changes: list | None = None, repo_dir=None, devices=None) -> dict:
    """What built the report: the commit, versions, devices, the date, the keys that differ from config.yaml."""
    import importlib.metadata as md

    repo_dir = repo_dir or Path(__file__).resolve().parents[3]

    def version(name):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_dir,
                               capture_output=True, text=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (subprocess.CalledProcessError, FileNotFoundError):
        commit = "not a git checkout"
    return {"commit": commit, "python": platform.python_version(),
            "versions": {name: version(name) for name in ["torch", "torchvision", "snakemake", "jinja2", "pdfkit"]},
            "platform": platform.platform(), "devices": list(devices or ["not recorded"]),
            "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "config_changes": list(config_changes or [])}


def listed(values, digits: int | None = None) -> str:
    """"a, b, c": each value through fmt(value, digits), or as it is without `digits`."""
    return ", ".join(str(v) if digits is None else fmt(v, digits) for v in values)


def interval(low, high, digits: int = 2) -> str:
    """"[low, high]" with `digits` decimals."""
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def code_names(names, last: str = " and ") -> Markup:
    """Each name as <code>, joined "a, b and c" (or by ", " throughout with last=", ")."""
    items = [Markup("<code>{}</code>").format(name) for name in names]
    return Markup(last).join([Markup(", ").join(items[:-1]), items[-1]]) if len(items) > 1 else Markup("").join(items)


def cells(*values, cls: str = "") -> Markup:
    """One <td> per value (escaped unless it is markup), each of class `cls` where given; a list stands for its
    items, so that `[x] if shown else []` is a column only some tables have."""
    td = Markup('<td class="{}">').format(cls) if cls else Markup("<td>")
    flat = [item for value in values for item in (value if isinstance(value, list) else [value])]
    return Markup("").join(td + Markup("{}</td>").format(value) for value in flat)


def formula(text) -> Markup:
    """A formula written as plain text, "x1^2 + x2^2 = 1" or "sin(2 x.u) + x_1^2 / 2", as the report sets formulas:
    one-letter names in <var>, the digits after one (or after its "_") as its subscript, "^2" as a superscript and
    the dot of "x.u" as a product dot."""
    html = str(Markup.escape(text))
    html = re.sub(r"(?<=[a-z])\.(?=[a-z]\b)", "·", html)
    html = re.sub(r"\^(\d+)", r"<sup>\1</sup>", html)
    html = re.sub(r"(?<![A-Za-z])([a-z])_?(\d+)", r"<var>\1</var><sub>\2</sub>", html)
    return Markup(re.sub(r"(?<![A-Za-z>])([a-z])(?![A-Za-z<])", r"<var>\1</var>", html))


def setting_words(text: str) -> str:
    """"weight_decay: 0.0005 vs 0.0" as "weight decay: 0.0005 vs 0.0": the setting's key, before its colon, in words
    ("onecycle.warmup" → "onecycle warmup")."""
    return re.sub(r"^[\w.]+(?=:)", lambda key: key.group(0).replace("_", " ").replace(".", " "), text)


def environment(template_dir) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(interval=interval, code_names=code_names, cells=cells)
    env.filters.update(listed=listed, formula=formula, setting_words=setting_words)
    env.filters["fmt"] = fmt
    env.filters["signed"] = signed
    env.filters["g"] = lambda value: "–" if value is None else f"{value:g}"  # 0.001, 0, 1e-05
    env.filters["fixed"] = lambda value, digits=1: "–" if value is None else f"{value:,.{digits}f}"  # no exponent
    return env


def render(template_path, out_html, context: dict) -> None:
    template_path = Path(template_path)
    write_text(out_html, environment(template_path.parent).get_template(template_path.name).render(**context))


def html_to_pdf(html_path, pdf_path, options: dict | None = None) -> None:
    """pdfkit + wkhtmltopdf; a clear message when wkhtmltopdf is missing."""
    import pdfkit

    binary = shutil.which("wkhtmltopdf")
    if binary is None:
        raise RuntimeError(f"wkhtmltopdf is not installed, so {pdf_path} cannot be built ({html_path} is fine). "
                           "Install it: `sudo apt-get install wkhtmltopdf` (Debian/Ubuntu), "
                           "`brew install --cask wkhtmltopdf` (macOS), or `conda install -c conda-forge wkhtmltopdf`.")
    from ..files import atomic_path

    opts = {"page-size": "A4", "margin-top": "15mm", "margin-bottom": "15mm", "margin-left": "15mm",
            "margin-right": "15mm", "encoding": "UTF-8", "enable-local-file-access": None, "quiet": None,
            "print-media-type": None}
    opts.update(options or {})
    with atomic_path(pdf_path, suffix=".pdf") as tmp:
        try:
            pdfkit.from_file(str(html_path), str(tmp), options=opts,
                             configuration=pdfkit.configuration(wkhtmltopdf=binary))
        except OSError as error:  # wkhtmltopdf's own words ("Command failed") name no cause
            raise RuntimeError(f"wkhtmltopdf could not write {pdf_path}: {error}{disk_full(pdf_path)}") from error
        check_pdf(tmp, pdf_path)


def disk_full(path, below_mb: int = 64) -> str:
    """"; the disk holding … is full" when fewer than `below_mb` MB are free where `path` is written, else ""."""
    folder = Path(path).resolve().parent
    free = shutil.disk_usage(folder).free / 2**20
    return f"; the disk holding {folder} is full ({free:.0f} MB free)" if free < below_mb else ""


def check_pdf(tmp, pdf_path) -> None:
    """A PDF whole before it is moved into place: its end-of-file mark, and pages > 0 where pdfinfo says so."""
    with open(tmp, "rb") as fh:  # the head and the tail: a gallery PDF runs to tens of MB
        head = fh.read(4)
        size = fh.seek(0, 2)
        fh.seek(max(0, size - 2048))
        tail = fh.read()
    pages = None
    if shutil.which("pdfinfo"):
        out = subprocess.run(["pdfinfo", str(tmp)], capture_output=True, text=True).stdout
        pages = next((int(line.split()[-1]) for line in out.splitlines() if line.startswith("Pages:")), 0)
    if head != b"%PDF" or b"%%EOF" not in tail or pages == 0:
        empty = ", no pages" if pages == 0 else ""
        raise RuntimeError(f"wkhtmltopdf left {pdf_path} incomplete ({size:,} bytes{empty})"
                           f"{disk_full(pdf_path)}; nothing was kept")
