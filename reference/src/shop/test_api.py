from shop.train import evaluate


def test_evaluate_missing_model(tmp_path):
    assert evaluate(tmp_path / "missing") == 0.0
