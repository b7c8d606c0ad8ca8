"""``python -m benchmarks NAME [options]``: run one benchmark (``matmul``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from benchmarks import matmul

BENCHMARKS: dict[str, Callable[[Sequence[str] | None], int]] = {"matmul": matmul.main}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in BENCHMARKS:
        print(f"usage: python -m benchmarks {{{','.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    return BENCHMARKS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
