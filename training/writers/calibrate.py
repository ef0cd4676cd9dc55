"""The open-set operating point of a writer model, and the report that shows what it costs.

`python -m training writers-calibrate --model models/writers` (also run by `writers-open --export`):

1. Embeds every FEMNIST character the way the service does: `contract.preprocessing.preprocess`
   on the scan, the exported ONNX graph under ONNX Runtime, unit vectors.
2. Splits the writers exactly as the model's training did (its manifest's config: fractions and
   seed), so the calibration writers (the validation share) and the report writers (the held-out
   share) were never trained on.
3. Calibrates on the validation writers: for each (k enrolled, q query) cell of the grid, every
   writer with at least k + q characters enrols k of them and is queried with disjoint groups of q
   of the rest, over several seeded draws; the threshold is the `false_reject` quantile of the best
   score of those queries (`contract.writer_decision`: profile, cosine, best of the enrolled). The
   table goes into the manifest's `open_set`, which serving reads.
4. Reports on the held-out writers: in each draw a seeded share of the eligible writers is enrolled
   and the others are strangers, whose queries should come back "unknown"; per cell the top-1 of
   enrolled writers' queries, their false rejects and the strangers answered unknown at the stored
   thresholds, and the false-accept / false-reject curves (`docs/writers_open_set.md` + figure).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from contract.preprocessing import NoInkError, PreprocessConfig, preprocess
from contract.writer_decision import OpenSetCalibration, decide, profile
from training.data.femnist import load_femnist
from training.writers.data import split_writers

WRITER_MANIFEST_FILE = "writer_manifest.json"  # = contract.writer_manifest.WRITER_MANIFEST_FILE
ENROLLED = (1, 2, 5, 10, 20, 40)
QUERY = (1, 2, 5, 10, 20)
FALSE_REJECT = 0.05
CALIBRATION_DRAWS = 10
REPORT_DRAWS = 20
ENROLLED_SHARE = 2 / 3  # of the eligible held-out writers enrolled in a draw; the rest are strangers
# The users' own test: 45 writers enrolled with 20 characters, queries of 20.
USER_GALLERY, USER_K, USER_Q = 45, 20, 20
GALLERIES = (2, 5, 10, 20, USER_GALLERY)  # enrolled writers, for the users' cell
USER_METRIC = f"open_set_g{USER_GALLERY}_k{USER_K}_q{USER_Q}"  # its figures in the manifest's metrics


@dataclass(frozen=True)
class Embedded:
    embeddings: np.ndarray  # N×dim unit vectors
    writers: np.ndarray  # N writer ids
    calibration: np.ndarray  # writer ids the thresholds are set on (never trained on)
    report: np.ndarray  # writer ids the report is measured on (never trained on, nor calibrated on)


@dataclass(frozen=True)
class Cell:
    """One (k, q) cell's best scores: enrolled writers' queries (genuine) and strangers' queries."""

    enrolled: int
    query: int
    genuine: np.ndarray  # best score of each enrolled writer's query
    correct: np.ndarray  # whether that best score was the query's own writer
    stranger: np.ndarray  # best score of each stranger's query
    gallery: int  # enrolled writers per draw (mean)


def embed_characters(
    images: np.ndarray, preprocessing: PreprocessConfig, onnx_path: Path, batch: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Scans → the service's model inputs → unit embeddings; and the indices kept (a scan the
    service would answer "no ink found" for is dropped)."""
    inputs, kept = [], []
    for i, image in enumerate(images):
        try:
            inputs.append(preprocess(image, preprocessing))
        except NoInkError:
            continue
        kept.append(i)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name
    x = np.stack(inputs).astype(np.float32)
    out = np.concatenate(
        [session.run([output], {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    )
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.maximum(norms, 1e-12)).astype(np.float32), np.asarray(kept, np.int64)


def embed_femnist(model_dir: Path, data_dir: Path) -> Embedded:
    manifest = json.loads((model_dir / WRITER_MANIFEST_FILE).read_text(encoding="utf-8"))
    config = manifest["training"]["config"]
    preprocessing = PreprocessConfig(**manifest["preprocessing"])
    samples = load_femnist(data_dir / "femnist" / "femnist.npz")
    _, val, held_out = split_writers(
        samples.writers, config["train_writers"], config["val_writers"], config["seed"]
    )
    chosen = np.flatnonzero(np.isin(samples.writers, np.concatenate([val, held_out])))
    embeddings, kept = embed_characters(
        samples.images[chosen], preprocessing, model_dir / manifest["onnx"]["file"]
    )
    return Embedded(embeddings, samples.writers[chosen][kept], np.sort(val), np.sort(held_out))


def measure(
    embeddings: np.ndarray,
    writers: np.ndarray,
    pool: np.ndarray,
    k: int,
    q: int,
    n_draws: int,
    seed: int,
    enrolled_share: float = 1.0,
    gallery: int = 0,
) -> Cell:
    """The best scores of queries in one cell over n seeded draws. In each draw the eligible writers
    (≥ k + q characters) are shuffled; the first `gallery` of them (or `enrolled_share` of them)
    enrol k characters and query with disjoint groups of q of the rest; the others are strangers,
    queried with disjoint groups of q of all their characters."""
    rng = np.random.default_rng(seed)
    eligible = [idx for w in pool if len(idx := np.flatnonzero(writers == w)) >= k + q]
    genuine, correct, stranger, sizes = [], [], [], []
    for _ in range(n_draws if len(eligible) >= 2 else 0):  # identifying needs two writers
        order = rng.permutation(len(eligible))
        n_enrolled = gallery or max(2, round(len(order) * enrolled_share))
        n_enrolled = min(n_enrolled, len(order))
        chars = [rng.permutation(eligible[i]) for i in order]
        means = np.stack([profile(embeddings[c[:k]]) for c in chars[:n_enrolled]])
        sizes.append(n_enrolled)
        for j, c in enumerate(chars):
            rest = c[k:] if j < n_enrolled else c
            for start in range(0, len(rest) - q + 1, q):
                s = means @ profile(embeddings[rest[start : start + q]])
                best = int(np.argmax(s))
                if j < n_enrolled:
                    genuine.append(s[best])
                    correct.append(best == j)
                else:
                    stranger.append(s[best])
    return Cell(
        k,
        q,
        np.asarray(genuine, np.float64),
        np.asarray(correct, bool),
        np.asarray(stranger, np.float64),
        round(float(np.mean(sizes))) if sizes else 0,
    )


def calibrate(
    emb: Embedded,
    false_reject: float = FALSE_REJECT,
    enrolled: tuple[int, ...] = ENROLLED,
    query: tuple[int, ...] = QUERY,
    n_draws: int = CALIBRATION_DRAWS,
    seed: int = 0,
    source: str = "",
) -> OpenSetCalibration:
    """The threshold table on the calibration writers: per cell, the `false_reject` quantile of the
    best score of enrolled writers' queries (all eligible writers enrolled). A cell no writer can
    fill takes its neighbour's threshold; each row and column is then made non-decreasing, since a
    longer query or enrolment never needs a lower bar."""
    table = np.full((len(enrolled), len(query)), np.nan)
    for i, k in enumerate(enrolled):
        for j, q in enumerate(query):
            cell = measure(emb.embeddings, emb.writers, emb.calibration, k, q, n_draws, seed)
            if len(cell.genuine) >= 20:
                table[i, j] = np.quantile(cell.genuine, false_reject)
    if not np.isfinite(table).any():
        raise ValueError(f"no calibration writer has enough characters for any cell of {enrolled} × {query}")
    for i in range(len(enrolled)):  # fill along q, then along k, from the nearest measured cell
        table[i] = _fill(table[i])
    for j in range(len(query)):
        table[:, j] = _fill(table[:, j])
    table = np.maximum.accumulate(np.maximum.accumulate(table, axis=0), axis=1)
    return OpenSetCalibration(
        false_reject=false_reject,
        enrolled=enrolled,
        query=query,
        thresholds=tuple(tuple(round(float(t), 4) for t in row) for row in table),
        writers=len(emb.calibration),
        source=source,
    )


def _fill(values: np.ndarray) -> np.ndarray:
    known = np.flatnonzero(np.isfinite(values))
    if len(known) == 0:
        return values
    return np.interp(np.arange(len(values)), known, values[known])


def curve(cell: Cell, points: int = 201) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, false-reject rate, false-accept rate) swept over the cell's scores: at their
    quantiles, since an embedding may crowd every score into a narrow band of cosines."""
    scores = np.concatenate([cell.genuine, cell.stranger])
    thresholds = np.quantile(scores, np.linspace(0.0, 1.0, points)) if len(scores) else np.zeros(1)
    frr = np.array([(cell.genuine < t).mean() for t in thresholds])
    far = np.array([(cell.stranger >= t).mean() for t in thresholds])
    return thresholds, frr, far


def cell_row(cell: Cell, calibration: OpenSetCalibration) -> dict[str, float]:
    t = calibration.threshold(cell.query, cell.enrolled)
    known_g = np.array([decide(float(s), t) for s in cell.genuine])
    known_s = np.array([decide(float(s), t) for s in cell.stranger])
    return {
        "enrolled": cell.enrolled,
        "query": cell.query,
        "gallery": cell.gallery,
        "genuine_queries": len(cell.genuine),
        "stranger_queries": len(cell.stranger),
        "top1": float(cell.correct.mean()) if len(cell.correct) else math.nan,
        "threshold": t,
        "false_reject": float((~known_g).mean()) if len(known_g) else math.nan,
        "misidentified": float((known_g & ~cell.correct).mean()) if len(known_g) else math.nan,
        "strangers_unknown": float((~known_s).mean()) if len(known_s) else math.nan,
    }


def write_manifest(
    model_dir: Path, calibration: OpenSetCalibration, metrics: dict[str, float] | None = None
) -> Path:
    """The table into the model's manifest as `open_set` (placed after the older thresholds), and
    the held-out figures it was reported with into `metrics`."""
    path = model_dir / WRITER_MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.pop("open_set", None)
    manifest["metrics"] = {
        k: v for k, v in manifest.get("metrics", {}).items() if not k.startswith("open_set_")
    } | {k: round(float(v), 5) for k, v in (metrics or {}).items() if math.isfinite(v)}
    out: dict = {}
    for key, value in manifest.items():
        out[key] = value
        if key == "thresholds_by_query":
            out["open_set"] = calibration.model_dump(mode="json")
    out.setdefault("open_set", calibration.model_dump(mode="json"))
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _pct(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{100 * value:.1f} %"


def plot(cells: dict[tuple[int, int], Cell], calibration: OpenSetCalibration, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    panels = [
        (axes[0], [(USER_K, q) for q in calibration.query], "query", f"{USER_K} characters enrolled"),
        (axes[1], [(k, USER_Q) for k in calibration.enrolled], "enrolled", f"queries of {USER_Q} characters"),
    ]
    for ax, keys, varying, title in panels:
        for key in keys:
            cell = cells.get(key)
            if cell is None or not len(cell.genuine) or not len(cell.stranger):
                continue
            _, frr, far = curve(cell)
            label = f"{varying} {key[1] if varying == 'query' else key[0]}"
            (line,) = ax.plot(frr, 1 - far, label=label)
            row = cell_row(cell, calibration)
            ax.plot(row["false_reject"], row["strangers_unknown"], "o", color=line.get_color())
        ax.axvline(0.05, color="grey", lw=0.8, ls="--")
        ax.axhline(0.8, color="grey", lw=0.8, ls=":")
        ax.set_xlim(0, 0.5)
        ax.set_ylim(0, 1)
        ax.set_xlabel("enrolled writers' queries answered unknown (false reject)")
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("strangers' queries answered unknown (1 − false accept)")
    fig.suptitle(
        "Held-out FEMNIST writers; dots: the stored operating points "
        f"({_pct(calibration.false_reject)} false reject on the calibration writers)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(
    emb: Embedded, calibration: OpenSetCalibration, n_draws: int = REPORT_DRAWS, seed: int = 1
) -> tuple[dict[tuple[int, int], Cell], list[dict[str, float]], dict[str, float]]:
    """Every cell of the grid on the report writers, and the users' protocol (45 enrolled)."""
    cells, rows = {}, []
    for k in calibration.enrolled:
        for q in calibration.query:
            cell = measure(
                emb.embeddings, emb.writers, emb.report, k, q, n_draws, seed, enrolled_share=ENROLLED_SHARE
            )
            if len(cell.genuine):
                cells[(k, q)] = cell
                rows.append(cell_row(cell, calibration))
    user = measure(
        emb.embeddings, emb.writers, emb.report, USER_K, USER_Q, 5 * n_draws, seed, gallery=USER_GALLERY
    )
    return cells, rows, cell_row(user, calibration)


def by_gallery(
    emb: Embedded, calibration: OpenSetCalibration, n_draws: int = REPORT_DRAWS, seed: int = 1
) -> list[dict[str, float]]:
    """The users' cell with more or fewer writers enrolled: a stranger is accepted when any enrolled
    writer passes the bar, and an enrolled writer's query is rejected only when none does."""
    return [
        cell_row(
            measure(emb.embeddings, emb.writers, emb.report, USER_K, USER_Q, 5 * n_draws, seed, gallery=g),
            calibration,
        )
        for g in GALLERIES
    ]


def write_report(
    path: Path,
    figure: Path,
    model_dir: Path,
    emb: Embedded,
    calibration: OpenSetCalibration,
    rows: list[dict[str, float]],
    user: dict[str, float],
    command: str,
    galleries: list[dict[str, float]] | None = None,
) -> None:
    manifest = json.loads((model_dir / WRITER_MANIFEST_FILE).read_text(encoding="utf-8"))
    header = "| enrolled k \\ query q | " + " | ".join(str(q) for q in calibration.query) + " |"
    lines = [
        "# Writers, open set: the `unknown` decision",
        "",
        f"Generated by `{command}`; do not edit by hand. Model `{manifest['name']}` version "
        f"`{manifest['version']}` (`{manifest['onnx']['sha256'][:12]}…`).",
        "",
        f"Thresholds set on the {len(emb.calibration)} validation writers (never trained on) at "
        f"{_pct(calibration.false_reject)} false rejects per (k, q) cell, "
        f"{CALIBRATION_DRAWS} seeded draws each; measured on the {len(emb.report)} held-out writers "
        f"(never trained on, not calibrated on), {REPORT_DRAWS} draws a cell, "
        f"{round(100 * ENROLLED_SHARE)} % of the eligible writers enrolled in a draw and the rest "
        "strangers. Characters go through the service's preprocessing (`contract.preprocessing`) and "
        "the exported ONNX graph; a query's score is `contract.writer_decision` (the cosine of mean "
        "directions, as served).",
        "",
        "## The users' protocol",
        "",
        f"{USER_GALLERY} held-out writers enrolled with {USER_K} characters, queries of {USER_Q} "
        f"characters, the other eligible held-out writers strangers ({5 * REPORT_DRAWS} draws; "
        f"{user['genuine_queries']} enrolled and {user['stranger_queries']} stranger queries):",
        "",
        "| top-1 | threshold | false reject | misidentified | strangers answered unknown |",
        "|---|---|---|---|---|",
        f"| {_pct(user['top1'])} | {user['threshold']:.3f} | {_pct(user['false_reject'])} | "
        f"{_pct(user['misidentified'])} | {_pct(user['strangers_unknown'])} |",
        "",
        *_gallery_lines(galleries or []),
        "## Stored thresholds (`open_set` in `writer_manifest.json`)",
        "",
        "Serving interpolates in (log k, log q) and holds the table at its edges.",
        "",
        header,
        "|---" * (len(calibration.query) + 1) + "|",
        *[
            f"| {k} | " + " | ".join(f"{t:.3f}" for t in row) + " |"
            for k, row in zip(calibration.enrolled, calibration.thresholds, strict=True)
        ],
        "",
        "## Held-out writers at the stored thresholds",
        "",
        f"![false accept / false reject]({Path('images') / figure.name})",
        "",
        "| k | q | writers enrolled | queries (enrolled / strangers) | top-1 | false reject | "
        "misidentified | strangers unknown |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {r['enrolled']} | {r['query']} | {r['gallery']} | {r['genuine_queries']} / "
            f"{r['stranger_queries']} | {_pct(r['top1'])} | {_pct(r['false_reject'])} | "
            f"{_pct(r['misidentified'])} | {_pct(r['strangers_unknown'])} |"
            for r in rows
        ],
        "",
        "False reject: an enrolled writer's query answered `unknown`. Misidentified: answered with "
        "another enrolled writer. Strangers unknown: a query by a writer who was never enrolled "
        "answered `unknown` (1 − false accept). A stranger is accepted when any of the enrolled "
        "writers scores above the threshold, so the rate falls as more writers are enrolled.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def _gallery_lines(rows: list[dict[str, float]]) -> list[str]:
    if not rows:
        return []
    return [
        "The same cell with more or fewer writers enrolled (the others strangers): a stranger is "
        "accepted when any enrolled writer passes the bar, and an enrolled writer is rejected only "
        "when none does, so a larger gallery trades false rejects for false accepts.",
        "",
        "| writers enrolled | top-1 | false reject | misidentified | strangers unknown |",
        "|---|---|---|---|---|",
        *[
            f"| {r['gallery']} | {_pct(r['top1'])} | {_pct(r['false_reject'])} | "
            f"{_pct(r['misidentified'])} | {_pct(r['strangers_unknown'])} |"
            for r in rows
        ],
        "",
    ]


def run_calibration(
    model_dir: Path,
    data_dir: Path,
    report_path: Path | None,
    figure_path: Path | None,
    command: str,
    update_manifest: bool = True,
) -> dict[str, float]:
    emb = embed_femnist(model_dir, data_dir)
    source = (
        f"FEMNIST validation writers of the model's split (seed {_split_seed(model_dir)}), "
        f"{CALIBRATION_DRAWS} draws per cell: {command}"
    )
    calibration = calibrate(emb, source=source)
    cells, rows, user = report(emb, calibration)
    metrics = {
        f"{USER_METRIC}_{name}": user[name]
        for name in ("top1", "false_reject", "misidentified", "strangers_unknown")
    }
    if update_manifest:
        print(f"calibrated {write_manifest(model_dir, calibration, metrics)}")
    if report_path is not None and figure_path is not None:
        plot(cells, calibration, figure_path)
        galleries = by_gallery(emb, calibration)
        write_report(report_path, figure_path, model_dir, emb, calibration, rows, user, command, galleries)
        print(f"wrote {report_path} and {figure_path}")
    print(json.dumps(metrics, indent=2))
    return metrics


def _split_seed(model_dir: Path) -> int:
    manifest = json.loads((model_dir / WRITER_MANIFEST_FILE).read_text(encoding="utf-8"))
    return int(manifest["training"]["config"]["seed"])
