"""The reference tier: every network gradtui trains, in plain NumPy.

It runs from the first second of a fresh install, while the Numba kernels (the fast tier)
compile in the background (gradtui.engine.tiers), and it is the tests' and benchmarks'
independent computation of what the kernels compute:

* ``numpy_mlp.NumpyMLP`` and ``numpy_rnn.NumpyRNN``: straightforward NumPy networks with
  their own parameters (the speed baseline of benchmarks/ and the tests' oracle);
* ``mlp.ReferenceMLP``, ``recurrent.ReferenceRecurrent`` and ``transformer.ReferenceTransformer``: the same maths on a kernel
  network's flat parameter vector, with its layout and statistics, so an Experiment swaps
  between the tiers between two steps with nothing to convert;
* ``update``: the optimisers, clipping and gradient norms.
"""

from __future__ import annotations


def reference_network(net):
    """The reference-tier twin of a kernel network (MLPNetwork, RecurrentNetwork or TransformerNetwork)."""
    from gradtui.engine.reference.mlp import ReferenceMLP
    from gradtui.engine.reference.recurrent import ReferenceRecurrent

    if net.cfg.model.kind == "transformer":
        from gradtui.engine.reference.transformer import ReferenceTransformer

        return ReferenceTransformer(net)

    return ReferenceRecurrent(net) if hasattr(net, "cell") else ReferenceMLP(net)
