"""Render the Helm chart into plain manifests for kustomize: ``python deploy/render.py``.

The manifests in ``deploy/kustomize/`` are the chart rendered with its default
values by Helm's own template engine (the helm-python-sdk package binds it; no
helm binary is needed). ``tests/deploy/test_chart.py`` fails when they are not
current, so change the chart and run this, never edit the manifests by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import helm_python as helm

DEPLOY = Path(__file__).resolve().parent
CHART = DEPLOY / "chart" / "chinwag"
OUT = DEPLOY / "kustomize"
RELEASE = "chinwag"
HEADER = "# Rendered from deploy/chart/chinwag by deploy/render.py: edit the chart, not this.\n"


def render(values: dict[str, Any] | None = None, release: str = RELEASE) -> dict[str, str]:
    """The chart's manifests by template file name, empty ones left out, tidied."""
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values or {}, name=release, namespace="chinwag")
    files: dict[str, str] = {}
    for path, text in sorted(rendered.items()):
        lines = [line.rstrip() for line in text.splitlines()]
        while lines and lines[0] in ("", "---"):
            lines.pop(0)
        while lines and lines[-1] == "":
            lines.pop()
        if lines:
            files[Path(path).name] = "\n".join(lines) + "\n"
    return files


def kustomize_files() -> dict[str, str]:
    """What ``deploy/kustomize/`` must hold: the manifests and their kustomization."""
    manifests = {name: HEADER + text for name, text in render().items()}
    kustomization = (
        HEADER
        + "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        + "kind: Kustomization\n"
        + "resources:\n"
        + "".join(f"  - {name}\n" for name in manifests)
    )
    return {**manifests, "kustomization.yaml": kustomization}


def main() -> int:
    OUT.mkdir(exist_ok=True)
    wanted = kustomize_files()
    for stale in OUT.glob("*.yaml"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(wanted)} files to {OUT.relative_to(DEPLOY.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
