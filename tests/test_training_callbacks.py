"""Privacy-per-epoch callbacks on tiny models: PyTorch Lightning and the Hugging Face Trainer.

Both train a small MLP on records with random labels (nothing to learn but the records themselves), so whatever
the model fits is memorization and its leakage must rise from the first audited epoch to the last.
"""

import json

import numpy as np
import pytest
import torch

N, D, C = 120, 16, 4

# Lightning's own warnings, none about memberscope: its pytree helper uses an API torch 2.13 deprecates; one full
# batch per epoch and an in-process loader are what these tiny runs want.
pytestmark = [
    pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*smaller than the logging interval:UserWarning"),
]


@pytest.fixture(scope="module")
def records():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3 * N, D)).astype(np.float32)
    y = rng.integers(0, C, 3 * N)
    members = (x[:N], y[:N])
    nonmembers = (x[N : 2 * N], y[N : 2 * N])
    population = (x[2 * N :], y[2 * N :])
    return members, nonmembers, population


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(D, 128), torch.nn.ReLU(), torch.nn.Linear(128, C))


def _rises(curve):
    first, last = curve.records[0], curve.records[-1]
    assert last.auc > first.auc + 0.15, [r.auc for r in curve.records]
    assert last.tpr > first.tpr, curve.tprs
    assert last.train_accuracy > first.train_accuracy and last.accuracy_gap > first.accuracy_gap


def test_lightning_callback_sees_leakage_rise_on_an_overfitting_run(records, tmp_path):
    L = pytest.importorskip("lightning.pytorch", reason="the 'lightning' extra is not installed")
    from lightning.pytorch.loggers import CSVLogger

    from memberscope.integrations.lightning import PrivacyCallback

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _mlp()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            x, y = batch
            return torch.nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    members, nonmembers, population = records
    data = torch.utils.data.TensorDataset(torch.as_tensor(members[0]), torch.as_tensor(members[1]))
    loader = torch.utils.data.DataLoader(data, batch_size=N, shuffle=False)
    callback = PrivacyCallback(
        members, nonmembers, population, every_n_epochs=5, n_bootstrap=50, out_dir=tmp_path / "privacy"
    )
    trainer = L.Trainer(
        max_epochs=42,
        callbacks=[callback],
        logger=CSVLogger(tmp_path, name="logs"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        deterministic=True,
    )
    trainer.fit(Module(), loader)
    assert callback.curve.epochs == [5, 10, 15, 20, 25, 30, 35, 40, 42]  # every 5th, and the last
    assert set(callback.curve.records[0].attacks) == {"loss", "loss-calibrated"}
    _rises(callback.curve)
    # the metrics reached the trainer's logger, at the steps audited
    logged = (tmp_path / "logs" / "version_0" / "metrics.csv").read_text().splitlines()
    header = logged[0].split(",")
    assert {"memberscope/tpr_at_fpr_0.01", "memberscope/auc", "memberscope/loss-calibrated/auc"} <= set(header)
    assert sum(1 for line in logged[1:] if line.split(",")[header.index("memberscope/auc")]) == 9
    saved = json.loads((tmp_path / "privacy" / "privacy_curve.json").read_text())
    assert [e["epoch"] for e in saved["epochs"]] == callback.curve.epochs
    assert saved["suggested_stop"] == callback.suggest_stop().to_dict()
    assert (tmp_path / "privacy" / "privacy_curve.png").stat().st_size > 0


def test_lightning_callback_can_stop_training(records, tmp_path):
    L = pytest.importorskip("lightning.pytorch", reason="the 'lightning' extra is not installed")
    from memberscope.integrations.lightning import PrivacyCallback

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _mlp()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    members, nonmembers, _ = records
    data = torch.utils.data.TensorDataset(torch.as_tensor(members[0]), torch.as_tensor(members[1]))
    callback = PrivacyCallback(members, nonmembers, every_n_epochs=2, n_bootstrap=0, stop_training=True)
    trainer = L.Trainer(
        max_epochs=60, callbacks=[callback], logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(Module(), torch.utils.data.DataLoader(data, batch_size=N))
    stop = callback.suggest_stop()
    assert stop.triggered and trainer.current_epoch < 60
    assert callback.curve.epochs[-1] == stop.rose_at  # stopped as soon as the rise was seen


class _HFModel(torch.nn.Module):
    """The MLP as the Trainer takes a model: keyword inputs, a dict with the loss when labels are given."""

    def __init__(self):
        super().__init__()
        self.net = _mlp()

    def forward(self, x, labels=None):
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


def _hf_trainer(records, callback, tmp_path, epochs):
    transformers = pytest.importorskip("transformers", reason="the 'hf' extra is not installed")
    pytest.importorskip("accelerate", reason="the Trainer needs accelerate (the 'hf' extra)")
    members = records[0]
    train = [{"x": torch.as_tensor(x), "labels": int(y)} for x, y in zip(*members, strict=True)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=epochs,
        per_device_train_batch_size=N,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = transformers.Trainer(model=_HFModel(), args=args, train_dataset=train, callbacks=[callback])
    trainer.train()
    return trainer


def test_hf_trainer_callback_sees_leakage_rise_on_an_overfitting_run(records, tmp_path):
    pytest.importorskip("transformers", reason="the 'hf' extra is not installed")
    from memberscope.integrations.hf_trainer import PrivacyTrainerCallback

    members, nonmembers, population = records
    callback = PrivacyTrainerCallback(
        ({"x": members[0]}, members[1]),
        ({"x": nonmembers[0]}, nonmembers[1]),
        ({"x": population[0]}, population[1]),
        every_n_epochs=5,
        n_bootstrap=50,
        out_dir=tmp_path / "privacy",
    )
    trainer = _hf_trainer(records, callback, tmp_path, epochs=40)
    assert callback.curve.epochs == [5, 10, 15, 20, 25, 30, 35, 40]
    _rises(callback.curve)
    history = [h for h in trainer.state.log_history if "memberscope/auc" in h]
    assert [h["epoch"] for h in history] == [float(e) for e in callback.curve.epochs]
    assert history[-1]["memberscope/tpr_at_fpr_0.01"] == callback.curve.records[-1].tpr
    assert (tmp_path / "privacy" / "privacy_curve.json").exists()


@pytest.mark.parametrize(
    "module, hidden, extra",
    [
        (
            "memberscope.integrations.lightning",
            ["lightning.pytorch.callbacks", "pytorch_lightning.callbacks"],
            "lightning",
        ),
        ("memberscope.integrations.hf_trainer", ["transformers"], "hf"),
    ],
)
def test_a_missing_framework_names_the_extra(module, hidden, extra, monkeypatch):
    import importlib
    import sys

    from memberscope.exceptions import MissingDependencyError

    for name in hidden:
        monkeypatch.setitem(sys.modules, name, None)  # import of it raises ImportError
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MissingDependencyError, match=rf"memberscope\[{extra}\]"):
        importlib.import_module(module)
    monkeypatch.delitem(sys.modules, module, raising=False)


def test_hf_trainer_callback_logs_to_the_active_mlflow_run(records, tmp_path, monkeypatch):
    pytest.importorskip("transformers", reason="the 'hf' extra is not installed")
    mlflow = pytest.importorskip("mlflow", reason="the 'mlflow' extra is not installed")
    from memberscope.integrations.hf_trainer import PrivacyTrainerCallback

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    members, nonmembers, _ = records
    callback = PrivacyTrainerCallback(
        ({"x": members[0]}, members[1]), ({"x": nonmembers[0]}, nonmembers[1]), every_n_epochs=3, n_bootstrap=0,
        log_to_mlflow=True,
    )  # fmt: skip
    try:
        with mlflow.start_run() as run:
            _hf_trainer(records, callback, tmp_path, epochs=6)
        history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "memberscope/tpr_at_fpr_0.01")
    finally:
        mlflow.set_tracking_uri(None)
    assert [m.step for m in history] == [3, 6]  # one optimizer step per epoch: the whole member set is one batch
    assert [m.value for m in history] == [r.tpr for r in callback.curve.records]
