"""``python -m sample_company --root <lake folder> --batch 2026-11-20T00:00 [--batches N]``"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from . import generate, world


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sample_company", description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="lake folder: writes inbox/ and truth/ under it")
    parser.add_argument("--batch", default="2026-11-20T00:00", help="start of the first 6-hour batch (UTC)")
    parser.add_argument("--batches", type=int, default=1, help="how many consecutive batches")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", type=float, default=1.0, help="scale factor: records per batch grow with it")
    args = parser.parse_args(argv)
    first = dt.datetime.fromisoformat(args.batch).replace(tzinfo=None)
    for n in range(args.batches):
        start = first + n * world.BATCH
        batch = generate.write_batch(args.root, start, seed=args.seed, scale=args.scale)
        rows = ", ".join(f"{s} {f['rows']}" for s, f in batch["files"].items())
        print(f"{start:%Y-%m-%dT%H:%M}: {rows} rows under {args.root}/inbox/{generate.SOURCE}")


if __name__ == "__main__":
    main()
