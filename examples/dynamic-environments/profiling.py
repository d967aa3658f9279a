"""Debugging tasks: profile the pipeline's task. Not deployed to production."""

import cProfile
import io
import pstats

from environment_picker import estimate_mean


def profile_estimate(n: int) -> str:
    """The ten most expensive calls of estimate_mean(n)."""
    profiler = cProfile.Profile()
    profiler.runcall(estimate_mean, n)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(10)
    return out.getvalue()


if __name__ == "__main__":
    print(profile_estimate(10_000))
