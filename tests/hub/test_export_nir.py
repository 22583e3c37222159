"""NIR export of feed-forward, convolutional and recurrent SNNs, read back into snnTorch: same spikes."""

import math

import nir
import pytest
import torch
from torch import nn

from evospikenet.neurons import LIF
from hub.export_nir import (
    NIR_DT,
    RecurrentLIF,
    SpikingSequential,
    export_nir_file,
    read_into_snntorch,
    to_nir,
)

BETA = 0.75  # dyadic, with R = 1 / (1 - beta) the input gain is exactly 1.0 on both sides
P = dict(tau_mem=-1.0 / math.log(BETA), dt=1.0, r=1.0 / (1.0 - BETA), v_th=1.0, reset="zero")


def _nets():
    torch.manual_seed(0)
    ff = SpikingSequential(
        nn.Linear(20, 32), LIF("s", **P), nn.Linear(32, 10), LIF("s", **P), input_shape=(20,)
    )
    conv = SpikingSequential(
        nn.Conv2d(2, 4, 3, padding=1),
        LIF("s", **P),
        nn.Flatten(),
        nn.Linear(256, 10),
        LIF("s", **P),
        input_shape=(2, 8, 8),
    )
    rec = SpikingSequential(
        nn.Linear(20, 32), RecurrentLIF(32, **P), nn.Linear(32, 10), LIF("s", **P), input_shape=(20,)
    )
    with torch.no_grad():  # enough drive that the output layers fire
        for net, i in ((ff, 2), (conv, 3), (rec, 2)):
            net.layers[i].weight.mul_(4.0)
    return {"ff": ff, "conv": conv, "rec": rec}


@pytest.mark.parametrize("kind", ["ff", "conv", "rec"])
def test_nir_round_trip_into_snntorch_same_spikes(kind, tmp_path):
    net = _nets()[kind]
    torch.manual_seed(1)
    x = torch.rand(30, 3, *net.input_shape) * 3.0  # (T, B, ...)
    with torch.no_grad():
        ref = net(x)
    path = export_nir_file(net, tmp_path / f"{kind}.nir")
    m = read_into_snntorch(nir.read(str(path)))
    state, outs = None, []
    with torch.no_grad():
        for xt in x:
            out, state = m(xt) if state is None else m(xt, state)
            outs.append(out)
    got = torch.stack(outs)
    assert 0.01 < float(ref.mean()) < 0.99  # the comparison is not trivially all-silent or all-firing
    assert torch.equal(got, ref)


def test_lif_parameters_follow_the_euler_mapping():
    g = to_nir(_nets()["ff"])
    lif = g.nodes["1"]
    assert isinstance(lif, nir.LIF)
    assert 1.0 - NIR_DT / float(lif.tau[0]) == pytest.approx(BETA)
    assert float(lif.r[0]) * NIR_DT / float(lif.tau[0]) == pytest.approx(1.0)  # input gain (1 - beta) R
    assert float(lif.v_threshold[0]) == 1.0 and float(lif.v_reset[0]) == 0.0


def test_recurrent_loop_edges_and_bad_layers():
    g = to_nir(_nets()["rec"])
    assert ("1", "1.rec") in g.edges and ("1.rec", "1") in g.edges
    with pytest.raises(ValueError, match="reset must be 'zero'"):
        to_nir(SpikingSequential(nn.Linear(3, 3), LIF("s", reset="subtract"), input_shape=(3,)))
    with pytest.raises(ValueError, match="layers\\[0\\] must be"):
        SpikingSequential(nn.ReLU(), input_shape=(3,))
    with pytest.raises(ValueError, match="single-step"):
        SpikingSequential(LIF("m"), input_shape=(3,))
