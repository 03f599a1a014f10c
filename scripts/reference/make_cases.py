"""Write the fixed set of synthetic cases used by the differential check against RCAEval.

Usage: PYTHONPATH=src python scripts/reference/make_cases.py [OUT_DIR]   (default /tmp/llmrca-reference-cases)

The cases are ``llmrca.synthetic.make_case`` with fixed seeds (6 components:
gateway, head, three workers, operator); ``CASES`` lists them so that the test
rebuilds exactly the same data without reading these folders.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: (name, root, fault, seed): 3 workers x 4 fault types.
CASES: list[tuple[str, str, str, int]] = [
    (f"{root}_{fault}_{seed}", root, fault, seed)
    for seed, (root, fault) in enumerate(
        ((r, f) for f in ("cpu", "memory", "network", "gpu") for r in ("ray-worker-1", "ray-worker-2", "ray-worker-3")),
        start=100,
    )
]


def build(name: str, root: str, fault: str, seed: int):
    from llmrca.synthetic import make_case

    case = make_case(root=root, fault=fault, seed=seed, with_logs=False, with_traces=False)
    case.name = name
    return case


def main(out: Path) -> None:
    from llmrca.dataset.io import write_case

    out.mkdir(parents=True, exist_ok=True)
    for name, root, fault, seed in CASES:
        write_case(build(name, root, fault, seed), out / name)
    print(f"wrote {len(CASES)} cases to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/llmrca-reference-cases"))
