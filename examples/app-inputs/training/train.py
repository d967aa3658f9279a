"""The training task: fits y = a*x + b to noisy samples by gradient descent (standard library only).

Its `coefficients` output is the default of the predictor app's `model` input.
"""

import random


def make_samples(count: int, seed: int = 7) -> list[tuple[float, float]]:
    """Noisy points around y = 3x + 2, for x in [0, 1)."""
    rng = random.Random(seed)
    return [(x, 3.0 * x + 2.0 + rng.gauss(0.0, 0.1)) for x in (rng.random() for _ in range(count))]


def train(epochs: int, learning_rate: float) -> tuple[dict[str, float], float]:
    """Returns the fitted coefficients {"a", "b"} and the final mean squared error."""
    if epochs < 1 or learning_rate <= 0:
        raise ValueError("epochs must be at least 1 and learning_rate above 0")
    samples = make_samples(200)
    a = b = 0.0
    for _ in range(epochs):
        grad_a = grad_b = 0.0
        for x, y in samples:
            error = a * x + b - y
            grad_a += 2 * error * x / len(samples)
            grad_b += 2 * error / len(samples)
        a -= learning_rate * grad_a
        b -= learning_rate * grad_b
    loss = sum((a * x + b - y) ** 2 for x, y in samples) / len(samples)
    return {"a": round(a, 4), "b": round(b, 4)}, round(loss, 6)


if __name__ == "__main__":
    coefficients, loss = train(epochs=2000, learning_rate=0.5)
    print(coefficients, loss)
