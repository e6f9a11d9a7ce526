"""tfhull.report on synthetic inputs: files, figures, skips, escaping, headless Chromium."""

import base64
import csv
import dataclasses
import html as stdlib_html
import json
import pathlib
import re

import numpy as np
import pytest

import browser

from tfhull.errors import UserError
from tfhull.report import HullView, ImageRow, ReportInputs, figures, write_report
from tfhull.report import html as html_lib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG_RE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
MD_FIG_RE = re.compile(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)")
CLASSES = ("zero", "one", "two")
EVIL = "<script>alert('x')</script>"
# training, hull (2 spaces), nnz, class hulls, images, adversarial, robustness, rays, linear head.
FULL_FIGURES = 10
MINIMAL_FIGURES = 5  # training, hull (2 spaces), nnz, robustness.


def _view(rng, space, split, q, per_class):
  d_nn = rng.uniform(0.5, 2.0, q)
  d = d_nn * rng.uniform(0.3, 0.9, q)
  extra = {}
  if per_class:
    extra = dict(own_class_distance=d * rng.uniform(1.0, 1.5, q),
                 nearest_other_class_distance=d * rng.uniform(1.0, 2.5, q),
                 own_class_weight=rng.uniform(0, 1, q))
  return HullView(space=space, split=split, distance=d, lower_bound=d * 0.999,
                  nearest_distance=d_nn, outside=rng.uniform(size=q) < 0.95,
                  nnz=rng.integers(1, 12, q), **extra)


def _image(rng, channels):
  return rng.uniform(0, 1, (8, 8, channels)).astype(np.float32)


def make_inputs(*, channels=1, full=True, seed=0):
  """Synthetic ReportInputs; full=False leaves out every optional part."""
  rng = np.random.default_rng(seed)
  q, epochs = 60, 6
  # Out of order on purpose: the report shows one order (pixels first, the test set first).
  hull = [_view(rng, "layer:features", "flip_min_pgd_2", q, per_class=False),
          _view(rng, "pixel", "adv_min_pgd_2", q, per_class=False),
          _view(rng, "pixel", "test", q, per_class=full),
          _view(rng, "pixel", "flip_min_pgd_2", q, per_class=False),
          _view(rng, "layer:features", "test", q, per_class=full)]
  hull.append(dataclasses.replace(hull[1], split="adv_min_pgd_inf"))  # Coincides with L2.
  rows = []
  for i, k in enumerate((8, 5, 8)):
    test = _image(rng, channels)
    w = np.sort(rng.dirichlet(np.ones(k)))[::-1]
    support = [(_image(rng, channels), float(w[j]), CLASSES[j % 3]) for j in range(k)]
    projection = sum(wj * img for (img, wj, _) in support)
    rows.append(ImageRow(test=test, projection=projection, label=CLASSES[i], support=support,
                         distance=float(np.linalg.norm(test - projection))))
  adversarial = [{"norm": norm, "perturbation": rng.uniform(0, s, q),
                  "d_hull": rng.uniform(0.2, 1.0, q), "d_nn": rng.uniform(0.5, 2.0, q)}
                 for norm, s in (("2", 1.5), ("inf", 0.3))]
  adversarial[0]["perturbation"][0] = np.nan  # A sample the attack never flipped.
  eps = {"2": ("0.5", "1", "2"), "inf": ("0.03", "0.1", "0.2")}
  curve = lambda norm, base: {e: base * (1 - i / 3) for i, e in enumerate(eps[norm])}
  robustness = {"robust_accuracy": {"pgd": {"2": curve("2", 0.7), "inf": curve("inf", 0.8)},
                                    "fgm": {"inf": curve("inf", 0.9)}},
                "worst_case_robust_accuracy": {"2": curve("2", 0.6), "inf": curve("inf", 0.7)},
                "clean_accuracy": 0.98}
  t = np.linspace(-0.5, 2.0, 26)
  rays = {"t": t, "margin": 3.0 * (t[None, :] - rng.uniform(-0.3, 0.9, (4, 1))),
          "crossing": np.where(rng.uniform(size=q) < 0.8, rng.uniform(-0.4, 1.0, q), np.nan),
          "categories": {"crosses before the hull": 0.55, "crosses past the hull": 0.25,
                         "no crossing": 0.2}, "examples": np.array([0, 3, 7, 9])}
  linear_head = {"class_min_margin": np.array([1.5, -0.3, 0.7]),
                 "boundary_distance": rng.uniform(0, 3, q), "hull_distance": rng.uniform(0, 3, q)}
  return ReportInputs(
      title="digits & mlp: synthetic <report>",
      provenance=[{"step": "data", "type": "Dataset", "uri": "runs/x/data/0123abcd",
                   "fingerprint": "0123abcd", "created": "2025-01-01T00:00:00Z"},
                  {"step": "hull/layer:features/adv_min_pgd_2", "type": "HullDistances",
                   "uri": "gs://a-bucket/" + "very-long-run-name_" * 12 + "/hull/89efcdab",
                   "fingerprint": "89efcdab" * 8, "created": "2025-01-01T00:01:00Z"}],
      config="--dataset=digits\n--model=mlp:width=256,depth=2\n--note=a<b&c\n",
      versions={"tensorflow": "2.21.0", "keras": "3.15.1", "numpy": np.__version__,
                "git commit": "unknown"},
      space_dims={"pixel": 64, "layer:features": 256},
      headline=[("test accuracy", "0.984", "fraction of test images classified correctly"),
                ("test images outside the pixel hull", "95.0%", "certified: lower bound > 0"),
                ("median d_hull / d_NN", "0.61", "the hull reaches closer than any neighbour"),
                (EVIL, "1 < 2 & 3", "escaped, never run")],
      metrics={"test_accuracy": 0.984, "outside_fraction": {"pixel": 0.95}, "median_ratio": 0.61,
               "n": 60, "spaces": ["pixel", "layer:features"]},
      history={"loss": list(np.linspace(2.0, 0.05, epochs)),
               "accuracy": list(np.linspace(0.3, 1.0, epochs)),
               "test_loss": list(np.linspace(2.0, 0.2, epochs)),
               "test_accuracy": np.linspace(0.3, 0.98, epochs)},
      hull=hull,
      image_rows=rows if full else [],
      adversarial=adversarial if full else [],
      robustness=robustness,
      rays=rays if full else None,
      linear_head=linear_head if full else None,
      class_names=CLASSES)


def _read(path):
  return pathlib.Path(path).read_text(encoding="utf-8")


def _embedded_pngs(html_text):
  return [base64.b64decode(b, validate=True) for b in IMG_RE.findall(html_text)]


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
  out = tmp_path_factory.mktemp("full")
  inputs = make_inputs()
  return inputs, write_report(inputs, str(out)), out


def _check_report(inputs, result, out, n_figures):
  """Checks shared by every report."""
  for name in ("report.html", "report.md", "metrics.json"):
    assert (out / name).is_file(), name
  assert result["figures"] == n_figures
  assert result["html"] == str(out / "report.html")
  assert json.loads(_read(out / "metrics.json")) == inputs.metrics

  html_text = _read(out / "report.html")
  pngs = _embedded_pngs(html_text)
  assert len(pngs) == html_text.count('<img src="data:image/png;base64,') == n_figures
  for png in pngs:
    assert png.startswith(PNG_SIGNATURE) and png.endswith(b"IEND\xaeB`\x82")
  # Self-contained: no remote or relative resources of any kind.
  assert "http://" not in html_text and "https://" not in html_text
  assert len(re.findall(r'\bsrc="', html_text)) == n_figures
  assert "<link" not in html_text and "url(" not in html_text and "@import" not in html_text
  for _, value, _ in inputs.headline:
    assert stdlib_html.escape(value) in html_text

  md = _read(out / "report.md")
  refs = MD_FIG_RE.findall(md)
  assert len(refs) == n_figures == len(set(refs))
  for ref in refs:
    assert (out / ref).read_bytes().startswith(PNG_SIGNATURE)
  assert sorted(f"figures/{n}.png" for n in result["figure_names"]) == sorted(refs)
  assert "| test accuracy | 0.984 |" in md
  return html_text, md


def test_full_report(full_report):
  inputs, result, out = full_report
  html_text, md = _check_report(inputs, result, out, FULL_FIGURES)
  assert result["skipped"] == []
  assert 'class="skipped"' not in html_text
  for section in ("Training", "Distances to the training hull", "Ray scan", "Linear head",
                  "Provenance", "Versions"):
    assert section in html_text and section in md
  assert "<details><summary>Resolved flags</summary>" in html_text
  assert "--note=a&lt;b&amp;c" in html_text
  assert "crosses past the hull" in html_text and "89efcdab" in html_text
  for name in ("summary", "hull", "adversarial", "robustness", "rays", "provenance",
               "versions"):
    assert result["tables"][name] == str(out / f"{name}.csv"), name
  assert "hull_layer_features" in result["figure_names"]


def test_rgb_images(tmp_path):
  inputs = make_inputs(channels=3, full=False, seed=1)
  inputs.image_rows = make_inputs(channels=3, seed=1).image_rows
  result = write_report(inputs, str(tmp_path))
  _check_report(inputs, result, tmp_path, MINIMAL_FIGURES + 1)
  assert "image_rows" in result["figure_names"]
  assert "mean over the RGB channels" in _read(tmp_path / "report.html")


def test_missing_optional_inputs(tmp_path):
  inputs = make_inputs(full=False)
  result = write_report(inputs, str(tmp_path))
  html_text, md = _check_report(inputs, result, tmp_path, MINIMAL_FIGURES)
  notes = result["skipped"]
  assert len(notes) == 5
  for what in ("Own-class vs other-class scatter", "Image rows", "Minimal-perturbation scatter",
               "Ray scan", "Linear-head figures"):
    assert any(n.startswith(what + " skipped") for n in notes), what
  for note in notes:
    assert f'<p class="skipped">{stdlib_html.escape(note)}</p>' in html_text
    assert f"> {note}" in md


def test_nothing_but_the_required(tmp_path):
  inputs = ReportInputs(title="empty", provenance=[], config="", versions={}, headline=[],
                        metrics={}, history={}, hull=[], image_rows=[], adversarial=[],
                        robustness={})
  result = write_report(inputs, str(tmp_path))
  assert result["figures"] == 0 and len(result["skipped"]) == 7
  assert json.loads(_read(tmp_path / "metrics.json")) == {}


def test_text_is_escaped(full_report):
  inputs, result, out = full_report
  html_text, md = _read(out / "report.html"), _read(out / "report.md")
  assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html_text
  assert "<script>alert" not in html_text and "<script>alert" not in md
  assert html_text.count("<script>") == 1  # Only the figure counter.
  assert "<title>digits &amp; mlp: synthetic &lt;report&gt;</title>" in html_text
  assert "1 &lt; 2 &amp; 3" in html_text and "1 &lt; 2 &amp; 3" in md


def test_inconsistent_inputs_are_one_line_errors(tmp_path):
  inputs = make_inputs(full=False)
  inputs.hull[0].nnz = inputs.hull[0].nnz[:-1]
  with pytest.raises(UserError, match="layer:features/flip_min_pgd_2: nnz has shape"):
    write_report(inputs, str(tmp_path))
  inputs = make_inputs(full=False)
  inputs.headline.append(("only", "two"))
  with pytest.raises(UserError, match="not \\(quantity, value, meaning\\)"):
    write_report(inputs, str(tmp_path))
  assert not (tmp_path / "report.html").exists()


def test_figures_are_deterministic():
  views = make_inputs().hull[:3]
  a = figures.hull_distances("pixel", views, "hull_pixel")
  b = figures.hull_distances("pixel", views, "hull_pixel")
  assert a.png == b.png and a.png.startswith(PNG_SIGNATURE)
  assert figures.slug("haar:1:top32") == "haar_1_top32"


def test_renders_in_headless_chromium(request, tmp_path):
  exe = browser.chromium()
  if not exe:
    pytest.skip("no Chromium: install it (Debian/Ubuntu, as root: `apt-get install chromium`; "
                ".ci/run does this) to run the browser test")
  _, result, out = request.getfixturevalue("full_report")
  n = result["figures"]
  dom, console = browser.render(exe, out / "report.html", width=1400)
  assert f'data-figures-loaded="{n}/{n}"' in dom, dom[-500:]
  scroll, inner = map(int, re.search(r'data-width="(\d+)/(\d+)"', dom).groups())
  assert inner == 1400 and scroll <= inner, (scroll, inner)  # No horizontal overflow.
  errors = [l for l in console if "ERROR" in l or "Uncaught" in l]
  assert not errors, errors
  # This Chromium logs every console level as INFO:CONSOLE; the report itself logs nothing.
  assert not console, console

  # Negative control: an external image is blocked by the CSP, reported, and not counted.
  bad = tmp_path / "bad.html"
  bad.write_text(_read(out / "report.html").replace(
      "</section>", '<img src="https://example.invalid/x.png"></section>', 1), encoding="utf-8")
  dom, console = browser.render(exe, bad)
  assert f'data-figures-loaded="{n}/{n + 1}"' in dom
  assert any("Content Security Policy" in l for l in console), console


# Internal ids a reader must never see (outside the resolved flags, which stay as typed).
INTERNAL = re.compile(r"adv_min_|flip_min_|min_pgd|layer:features|haar:\d|\[pixel\]|\bpixel/")


def _visible_text(html_text):
  """The page's text as a reader sees it: no tags, scripts, styles, data URIs or the collapsed
  resolved flags."""
  text = re.sub(r"<details>.*?</details>", " ", html_text, flags=re.S)
  text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
  alts = " ".join(re.findall(r'alt="([^"]*)"', text))
  return stdlib_html.unescape(re.sub(r"<[^>]+>", " ", text) + " " + alts)


def test_human_names_in_one_order(full_report):
  _, _, out = full_report
  text = _visible_text(_read(out / "report.html"))
  assert not INTERNAL.findall(text), sorted(set(INTERNAL.findall(text)))
  for name in ("pixels (64-d)", "penultimate layer (256-d)", "minimal PGD (L2)",
               "flip points of minimal PGD (L2)", "hull: penultimate layer"):
    assert name in text, name
  # Hull table: pixels before the penultimate layer; in each, test, adversarial, flip points.
  rows = list(csv.DictReader((out / "hull.csv").open(encoding="utf-8")))
  assert [(r["space_id"], r["split_id"]) for r in rows] == [
      ("pixel", "test"), ("pixel", "adv_min_pgd_inf"), ("pixel", "adv_min_pgd_2"),
      ("pixel", "flip_min_pgd_2"), ("layer:features", "test"),
      ("layer:features", "flip_min_pgd_2")]
  html_text = _read(out / "report.html")
  assert html_text.index("<td>pixels (64-d)</td>") < html_text.index(
      "<td>penultimate layer (256-d)</td>")
  assert "Figure 2. Distances to the training set in pixels (64-d)" in html_text
  assert "Figure 3. Distances to the training set in penultimate layer (256-d)" in html_text
  # Fractions read as percentages, and every section with numbers opens with a sentence.
  assert html_text.count('<p class="lead">') >= 5
  assert re.search(r"<td>\d+(\.\d)?%</td>", html_text)


def test_tables_as_csv_agree_with_the_inputs(full_report):
  inputs, result, out = full_report
  read = lambda name: list(csv.reader((out / f"{name}.csv").open(encoding="utf-8")))
  assert read("summary")[1:] == [list(h) for h in inputs.headline]
  by_key = {(v.space, v.split): v for v in inputs.hull}
  for row in csv.DictReader((out / "hull.csv").open(encoding="utf-8")):
    v = by_key[row["space_id"], row["split_id"]]
    assert int(row["queries"]) == v.distance.size
    assert float(row["fraction_outside"]) == pytest.approx(v.outside.mean(), rel=1e-12)
    assert float(row["median_distance"]) == pytest.approx(np.median(v.distance), rel=1e-12)
  rob = {(r["norm"], r["attack"], float(r["eps"])): float(r["robust_accuracy"])
         for r in csv.DictReader((out / "robustness.csv").open(encoding="utf-8"))}
  for attack, by_norm in inputs.robustness["robust_accuracy"].items():
    for norm, by_eps in by_norm.items():
      for eps, acc in by_eps.items():
        assert rob[norm, attack, float(eps)] == pytest.approx(acc, rel=1e-12)
  adv = list(csv.DictReader((out / "adversarial.csv").open(encoding="utf-8")))
  assert [r["norm"] for r in adv] == ["inf", "2"]  # One norm order everywhere: L∞ first.
  e = inputs.adversarial[0]
  ok = np.isfinite(e["perturbation"])
  assert float(adv[1]["spearman_d_hull"]) == pytest.approx(
      figures.spearman({"perturbation": e["perturbation"][ok], "d_hull": e["d_hull"][ok]}))
  assert dict(read("versions")[1:])["git commit"] == "unknown"
  assert read("provenance")[2][0] == "hull/layer:features/adv_min_pgd_2"


def test_headlines_follow_the_numbers():
  rays = {"t": np.linspace(0, 1, 5), "margin": np.ones((2, 5)),
          "crossing": np.full(7, np.nan), "categories": {"no crossing": 1.0}}
  assert html_lib._rays_headline(rays) == "None of the 7 scanned rays crosses a decision boundary."
  assert figures.rays(rays) is not None
  assert html_lib.pct(1) == "100%" and html_lib.pct(0.9333) == "93.3%"
  assert html_lib.pct(None) == "n/a"


def _legends(monkeypatch, make):
  """The legend entries and line artists of the figure `make()` draws."""
  drawn = []
  monkeypatch.setattr(figures, "_png", lambda fig: drawn.append(fig) or PNG_SIGNATURE)
  assert make() is not None
  fig, = drawn
  texts = [t.get_text() for leg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
           if leg is not None for t in leg.get_texts()]
  return texts, [line for ax in fig.axes for line in ax.get_lines()]


def test_coincident_robustness_curves_are_visible_and_named(monkeypatch):
  """The L-inf PGD curve equal to the worst case is drawn above it in its own style, and the
  legend says "identical to" (the helper the distance CDFs use)."""
  pgd = {"inf": {"0.01": 0.8, "0.03": 0.5, "0.1": 0.1}, "2": {"0.5": 0.7, "1.0": 0.4}}
  fgsm = {"inf": {"0.01": 0.9, "0.03": 0.7, "0.1": 0.4}}
  rob = {"robust_accuracy": {"pgd": pgd, "fgsm": fgsm},
         "worst_case_robust_accuracy": {"inf": dict(pgd["inf"]),
                                        "2": {"0.5": 0.6, "1.0": 0.3}},
         "clean_accuracy": 0.95}
  texts, lines = _legends(monkeypatch, lambda: figures.robustness(rob))
  pgd_name = figures.names.attack_name("pgd")
  assert f"worst case; identical to {pgd_name}" in texts, texts
  assert texts.count("worst case") == 1, texts  # The L2 panel's worst case is PGD's minus 0.1.
  worst = [l for l in lines if l.get_label().startswith("worst case")]
  pgd_lines = [l for l in lines if l.get_label() == pgd_name]
  assert worst and pgd_lines
  for w, p in zip(worst, pgd_lines):
    assert p.get_zorder() > w.get_zorder() and p.get_marker() != w.get_marker()
    assert p.get_linestyle() != w.get_linestyle()


def test_coincident_distance_cdfs_say_so(monkeypatch):
  rng = np.random.default_rng(0)
  test = _view(rng, "pixel", "test", 30, False)
  same = dataclasses.replace(test, split="adv_min_pgd_2")
  near = dataclasses.replace(test, split="adv_min_pgd_inf", distance=test.distance * 1.005)
  texts, _ = _legends(monkeypatch, lambda: figures.hull_distances("pixel", [test, same, near],
                                                                  "hull_pixel"))
  assert sum("; identical to " in t for t in texts) == 1, texts
  assert sum("; within 1% of " in t for t in texts) == 1, texts
  assert figures.coincidence_note(([1.0, 2.0],), []) == ""
