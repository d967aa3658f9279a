"""Entry point: `pyproject-package [URL]` (or `python -m pyproject_package.main`) runs the pipeline locally."""

import asyncio
import sys

from pyproject_package.tasks.tasks import DEFAULT_URL, pipeline


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL
    print(asyncio.run(pipeline(url)))


if __name__ == "__main__":
    main()
