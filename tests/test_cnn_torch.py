"""PyTorch as an outside oracle for the CNN engine: the same weights in nn.Conv2d,
nn.BatchNorm2d (training mode), 1x1-projected residual blocks, global average pooling
and nn.Linear give the same loss and every gradient to 1e-6 (float64)."""

import numpy as np
import pytest

from tests.cnn_nets import cnn_experiment

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class TorchCNN(nn.Module):
    """The engine's network written with torch.nn, its weights copied from an Experiment."""

    def __init__(self, exp):
        super().__init__()
        net, m = exp.network, exp.cfg.model
        self.layers, self.side, self.channels, self.m = net.specs, net.side, net.channels, m
        params = exp.params()
        self.convs, self.norms, self.projections = nn.ModuleList(), nn.ModuleList(), nn.ModuleDict()
        self.alphas = nn.ParameterList()
        for l, spec in enumerate(self.layers):
            conv = nn.Conv2d(spec.c_in, spec.c_out, 3, stride=spec.stride, padding=1).double()
            W = params[f"conv.{l}.W"].reshape(3, 3, spec.c_in, spec.c_out)
            conv.weight.data = torch.tensor(W.transpose(3, 2, 0, 1).copy())
            conv.bias.data = torch.tensor(params[f"conv.{l}.b"])
            self.convs.append(conv)
            bn = nn.BatchNorm2d(spec.c_out, eps=1e-5, momentum=0.1).double()
            if m.batchnorm:
                bn.weight.data = torch.tensor(params[f"conv.{l}.gamma"])
                bn.bias.data = torch.tensor(params[f"conv.{l}.beta"])
            self.norms.append(bn)
            self.alphas.append(nn.Parameter(torch.tensor(params[f"conv.{l}.alpha"]) if m.activation == "prelu" else torch.zeros(1, dtype=torch.float64)))
            if spec.skip == "projection":
                stride = self.layers[l - 1].stride
                P = params[f"conv.{l}.P"]
                proj = nn.Conv2d(P.shape[0], P.shape[1], 1, stride=stride, bias=False).double()
                proj.weight.data = torch.tensor(P.T.reshape(P.shape[1], P.shape[0], 1, 1).copy())
                self.projections[str(l)] = proj
        self.head = nn.Linear(m.width, params["output.b"].size).double()
        self.head.weight.data = torch.tensor(params["output.W"].T.copy())
        self.head.bias.data = torch.tensor(params["output.b"])

    def phi(self, y, l):
        a, m = self.m.activation, self.m
        if a == "prelu":
            return F.prelu(y, self.alphas[l])
        return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "linear": lambda v: v,
                "leaky_relu": lambda v: F.leaky_relu(v, m.leaky_slope), "elu": lambda v: F.elu(v, m.elu_alpha)}[a](y)

    def forward(self, x):
        h = torch.tensor(x).reshape(len(x), self.side, self.side, self.channels).permute(0, 3, 1, 2)
        outputs = []
        for l, spec in enumerate(self.layers):
            y = self.convs[l](outputs[-1] if outputs else h)
            if self.m.batchnorm:
                y = self.norms[l](y)
            out = self.phi(y, l)
            if spec.skip != "none":
                source = h if spec.source < 0 else outputs[spec.source]
                out = out + (self.projections[str(l)](source) if spec.skip == "projection" else source)
            outputs.append(out)
        return self.head(outputs[-1].mean(dim=(2, 3)))

    def gradients(self):
        """Gradients under the engine's parameter names, in its layouts."""
        out = {"output.W": self.head.weight.grad.numpy().T, "output.b": self.head.bias.grad.numpy()}
        for l, spec in enumerate(self.layers):
            out[f"conv.{l}.W"] = self.convs[l].weight.grad.numpy().transpose(2, 3, 1, 0).reshape(9 * spec.c_in, spec.c_out)
            out[f"conv.{l}.b"] = self.convs[l].bias.grad.numpy()
            if self.m.batchnorm:
                out[f"conv.{l}.gamma"] = self.norms[l].weight.grad.numpy()
                out[f"conv.{l}.beta"] = self.norms[l].bias.grad.numpy()
            if self.m.activation == "prelu":
                out[f"conv.{l}.alpha"] = self.alphas[l].grad.numpy()
            if str(l) in self.projections:
                w = self.projections[str(l)].weight.grad.numpy()
                out[f"conv.{l}.P"] = w.reshape(w.shape[0], w.shape[1]).T
        return out


CASES = [("tanh", "batchnorm+residual", "digits", {}), ("relu", "residual", "shapes", {}),
         ("prelu", "batchnorm", "shapes", {}), ("sigmoid", "plain", "digits", {}),
         ("elu", "batchnorm+residual", "shapes", {"model.width": 8, "data.image_size": 9, "model.depth": 6, "model.stages": 3})]


def assert_matches_pytorch(exp):
    """The engine's loss and every gradient on one batch equal PyTorch's to 1e-6."""
    x, y = exp.batch()
    loss, grads = exp.gradients(x, y)
    model = TorchCNN(exp)
    torch_loss = F.cross_entropy(model(x), torch.tensor(y))
    torch_loss.backward()
    assert abs(loss - torch_loss.item()) <= 1e-6 * max(1.0, abs(loss))
    expected = model.gradients()
    assert set(expected) == set(grads)
    for name, g in expected.items():
        scale = max(1.0, float(np.abs(g).max()))
        np.testing.assert_allclose(grads[name], g, rtol=0, atol=1e-6 * scale, err_msg=name)
        assert np.abs(g).max() > 0.0, name


@pytest.mark.parametrize("activation,arch,task,extra", CASES)
def test_loss_and_every_gradient_match_pytorch(activation, arch, task, extra):
    exp = cnn_experiment(activation, arch, task, **{"train.batch_size": 6, **extra})
    if activation == "prelu":
        for name in exp.params():
            if name.endswith(".alpha"):
                exp.set_params({name: np.linspace(0.05, 0.6, exp.params()[name].size)})
    assert_matches_pytorch(exp)


def test_convolutions_in_chunks_of_any_size_match_pytorch():
    """The kernels build the im2col matrix a chunk of rows at a time; 7 rows divides neither
    a layer's 384 (6 images of 8x8) nor 96 (4x4) positions, nor an image, so chunks end mid-row
    and mid-image and the last one is short."""
    exp = cnn_experiment("tanh", "residual", "digits", **{"train.batch_size": 6})
    exp.network.chunk_size = 7 * 9 * 3  # 7 rows of 9 x 3 columns after the first layer (21 rows of 9 in it)
    assert_matches_pytorch(exp)
    assert exp.network._workspace(6)[6].size == 7 * 9 * 3


def test_running_statistics_match_pytorch_after_a_training_step():
    exp = cnn_experiment("relu", "batchnorm", "digits", **{"train.batch_size": 6})
    x, y = exp.batch()
    model = TorchCNN(exp)
    model.train()
    model(x)
    exp.step()
    for l in range(len(exp.network.specs)):
        np.testing.assert_allclose(exp.network.running_mean[l], model.norms[l].running_mean.numpy(), atol=1e-9)
        np.testing.assert_allclose(exp.network.running_var[l], model.norms[l].running_var.numpy(), atol=1e-9)
