"""Charts of a document as PNG images, the same bytes for the same document.

DejaVu Sans (bundled with matplotlib) carries every Vietnamese diacritic; PNG metadata is
fixed (matplotlib writes its version and nothing else when told so), and the Agg backend
draws without a display, so a worker renders them.
"""

from __future__ import annotations

import io
import textwrap
from decimal import Decimal

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure

from nscl_domain.documents.content import TIMELINESS_VI, Document

FONT = "DejaVu Sans"
DPI = 110
# Fixed metadata: no creation time, no software version in the file.
PNG_METADATA = {"Software": None}


def _png(figure: MplFigure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata=PNG_METADATA)
    plt.close(figure)
    return buffer.getvalue()


def _figure(width: float = 8.0, height: float = 3.8) -> tuple[MplFigure, Axes]:
    plt.rcParams.update({"font.family": FONT, "font.size": 8, "svg.hashsalt": "nscl"})
    figure, axes = plt.subplots(figsize=(width, height))
    return figure, axes


def targets_chart(document: Document) -> bytes:
    """Actuals of the indicators year by year across the phase, each beside its phase
    target (a dashed line of the same colour)."""
    figure, axes = _figure()
    years = document.years
    shown = [f for f in document.figures if f.by_year][:6]
    width = 0.8 / max(len(shown), 1)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, fig in enumerate(shown):
        colour = colours[i % len(colours)]
        xs = [y + (i - (len(shown) - 1) / 2) * width for y in years]
        ys = [float(fig.by_year.get(y, Decimal(0))) for y in years]
        axes.bar(xs, ys, width=width, color=colour, label=_wrap(fig.name_vi, 60))
        judged_here = [
            t for t in document.targets if t.indicator == fig.indicator and t.target is not None
        ]
        if judged_here:
            running, cumulative = Decimal(0), []
            for y in years:
                running += fig.by_year.get(y, Decimal(0))
                cumulative.append(float(running))
            axes.plot(years, cumulative, color=colour, marker="o", linewidth=1,
                      label="Lũy kế thực hiện")  # fmt: skip
        for judged in judged_here:
            if judged.target is not None:
                axes.axhline(
                    float(judged.target), color=colour, linestyle="--", linewidth=0.9,
                    label=f"Chỉ tiêu {judged.phase_vi.lower()}: {judged.target.normalize():f}",
                )  # fmt: skip
    axes.set_xticks(years, [str(y) for y in years])
    axes.set_title("Kết quả thực hiện các chỉ tiêu so với mục tiêu của giai đoạn")
    axes.set_ylabel("Giá trị thực hiện trong năm")
    axes.legend(fontsize=5.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    return _png(figure)


def budget_chart(document: Document) -> bytes:
    """Estimated, allocated and spent by funding source and destination, in million đồng."""
    figure, axes = _figure()
    labels = [
        _wrap(f"{line.source_vi} → {line.destination_vi}", 34) for line in document.budget
    ] or ["(không có số liệu)"]
    rows = document.budget
    ys = range(len(labels))
    for offset, (name, values) in enumerate(
        (
            ("Dự toán", [r.estimated for r in rows]),
            ("Được giao", [r.allocated for r in rows]),
            ("Đã chi", [r.spent for r in rows]),
        )
    ):
        axes.barh(
            [y + (offset - 1) * 0.27 for y in ys],
            [v / 1_000_000 for v in values] or [0],
            height=0.27,
            label=name,
        )
    axes.set_yticks(list(ys), labels, fontsize=6)
    axes.invert_yaxis()
    axes.set_xlabel("Triệu đồng")
    axes.set_title("Kinh phí theo nguồn và nơi nhận dự toán")
    axes.legend(fontsize=6)
    figure.tight_layout()
    return _png(figure)


def timeliness_chart(document: Document) -> bytes:
    """How many units reported on time, late, or not at all."""
    figure, axes = _figure(5.5, 3.0)
    order = ("on_time", "late", "missing", "not_due")
    counts = [sum(1 for r in document.timeliness if r.status == s) for s in order]
    names = [TIMELINESS_VI[s] for s in order]
    axes.bar(names, counts, color=["#2e7d32", "#f9a825", "#c62828", "#9e9e9e"])
    for x, count in enumerate(counts):
        axes.text(x, count, str(count), ha="center", va="bottom")
    axes.set_ylabel("Số đơn vị")
    axes.set_title("Tình hình gửi báo cáo của các đơn vị")
    figure.tight_layout()
    return _png(figure)


def _wrap(text: str, width: int) -> str:
    return textwrap.fill(text, width)


def all_charts(document: Document) -> dict[str, bytes]:
    """Every chart of the document, by name."""
    return {
        "targets": targets_chart(document),
        "budget": budget_chart(document),
        "timeliness": timeliness_chart(document),
    }
