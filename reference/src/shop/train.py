"""Training tasks: take a data set, write a model file."""
import pathlib


def train(epochs: int, learning_rate: float) -> pathlib.Path:
    model = pathlib.Path("model.txt")
    model.write_text(f"epochs={epochs} lr={learning_rate}\n")
    return model


def evaluate(model: pathlib.Path) -> float:
    return 1.0 if model.exists() else 0.0
