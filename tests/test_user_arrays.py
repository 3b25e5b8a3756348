"""Every public Experiment entry point that takes user arrays checks them before a kernel runs.

Unchecked, a label of -5 corrupted the heap (abort), 1000000 segfaulted, a label equal to the
class count gave a garbage loss and a short ``y`` was read past its end.
"""

import numpy as np
import pytest

import gradtui
from gradtui.tasks import make_dataset

SMALL = {"model.depth": 3, "model.width": 8, "data.samples": 256, "train.batch_size": 16}


@pytest.fixture(scope="module")
def mlp():
    return gradtui.Experiment(gradtui.load_config("vanishing-sigmoid").with_overrides(SMALL))


@pytest.fixture(scope="module")
def copy_rnn():
    cfg = gradtui.load_config("copy-memory").with_overrides(
        {"model.depth": 1, "model.width": 8, "data.samples": 64, "data.seq_len": 5, "train.batch_size": 8})
    return gradtui.Experiment(cfg)


@pytest.mark.parametrize("label", [-5, 3, 1_000_000])
def test_out_of_range_labels_are_refused_before_the_kernel(mlp, label):
    x, y = mlp.batch()
    before = mlp.params()
    with pytest.raises(ValueError, match=r"y must hold class labels 0 to 2; received values from"):
        mlp.gradients(x, np.full_like(y, label))
    assert all(np.array_equal(before[k], v) for k, v in mlp.params().items())


def test_shapes_lengths_and_dtypes_are_refused_with_what_was_expected(mlp):
    x, y = mlp.batch()
    with pytest.raises(ValueError, match=r"y must have one target per example of x \(16\); received 15"):
        mlp.gradients(x, y[:-1])
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 2\); received \(16, 3\)"):
        mlp.gradients(np.zeros((16, 3)), y)
    with pytest.raises(ValueError, match=r"y must have shape \(batch\); received \(16, 1\)"):
        mlp.gradients(x, y[:, None])
    with pytest.raises(ValueError, match=r"x must hold at least one example"):
        mlp.gradients(x[:0], y[:0])
    with pytest.raises(ValueError, match=r"y must hold integer class labels; received dtype <U1"):
        mlp.gradients(x, np.array(["a"] * 16))
    with pytest.raises(ValueError, match=r"x must hold real numbers; received dtype complex128"):
        mlp.gradients(x.astype(complex), y)


def test_valid_batches_still_work_and_whole_float_labels_are_accepted(mlp):
    x, y = mlp.batch()
    loss, grads = mlp.gradients(x, y)
    loss_f, _ = mlp.gradients(x, y.astype(np.float64))
    assert np.isfinite(loss) and loss == loss_f and set(grads) == set(mlp.params())
    loss_3, _ = mlp.gradients(x[:3], y[:3])  # any batch size
    assert np.isfinite(loss_3)


def test_recurrent_labels_and_lengths_are_checked(copy_rnn):
    x, y = copy_rnn.batch()
    assert y.shape == (8, 10)
    with pytest.raises(ValueError, match=r"y must hold class labels 0 to 9; received values from \d to 10"):
        copy_rnn.gradients(x, np.where(y == y.max(), 10, y))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 25, 10\); received \(8, 24, 10\)"):
        copy_rnn.gradients(x[:, :-1], y)
    loss, _ = copy_rnn.gradients(x, y)
    assert np.isfinite(loss)


def test_set_params_checks_every_value_before_loading_any(mlp):
    before = mlp.params()
    good = np.ones_like(before["hidden.0.W"])
    with pytest.raises(ValueError, match=r"params\['hidden.1.W'\] must have shape \(8, 8\); received \(8, 7\)"):
        mlp.set_params({"hidden.0.W": good, "hidden.1.W": np.ones((8, 7))})
    with pytest.raises(ValueError, match=r"params\['hidden.0.b'\] must hold real numbers; received dtype object"):
        mlp.set_params({"hidden.0.b": np.array([None] * 8)})
    assert np.array_equal(mlp.params()["hidden.0.W"], before["hidden.0.W"])  # nothing half-loaded


def test_a_supplied_dataset_is_checked(mlp):
    cfg = mlp.cfg
    data = make_dataset(cfg)
    bad = type(data)(data.x_train, np.where(data.y_train == 0, 7, data.y_train), data.x_test, data.y_test,
                     data.n_in, data.n_out, data.classification)
    with pytest.raises(ValueError, match=r"data.y_train must hold class labels 0 to 2; received values from 1 to 7"):
        gradtui.Experiment(cfg, data=bad)


@pytest.mark.parametrize("steps, message", [(-1, "steps must be 0 or more; received -1"),
                                            (2.5, "steps must be a whole number, not 2.5")])
def test_run_refuses_a_negative_or_fractional_step_count(mlp, steps, message):
    with pytest.raises(ValueError, match=message):
        mlp.run(steps)
    assert mlp.run(0) == []


def test_load_state_checks_its_arrays_before_loading(mlp):
    saved = mlp.save_state()
    bad = {**saved, "theta": saved["theta"][:-1]}
    with pytest.raises(ValueError, match=r"params\['theta'\] must have shape"):
        mlp.load_state(bad)
    with pytest.raises(ValueError, match=r"must have shape"):
        mlp.load_state({**saved, "theta": 0.0})  # a scalar would otherwise fill every parameter
    mlp.load_state(saved)
    assert np.array_equal(mlp.theta, saved["theta"])
