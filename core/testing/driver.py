"""Conformance of a ``driver``: embedding shape, scalar regularisers, gradients, eval determinism, frames
embedded independently, and a missing signal named in the error."""

from __future__ import annotations

import torch

from lca.contracts.driver import Driver
from lca.errors import SignalError
from lca.registry import Registry
from lca.testing.helpers import assert_grads_reach, make_signals


def check_driver(registry: Registry, name: str) -> None:
    torch.manual_seed(0)
    driver = registry.build("driver", name, dict(registry.load("driver", name).test_config))
    assert isinstance(driver, Driver), f"driver '{name}' does not subclass lca.contracts.driver.Driver"
    signals = make_signals(2, 3, torch.Generator().manual_seed(0))
    out = driver(signals)
    expected = (2, 3, driver.out_dim)
    assert out.shape == expected and out.dtype == torch.float32, (
        f"driver '{name}': {tuple(out.shape)}, not {expected}"
    )
    regularizers = driver.regularization()
    assert all(value.dim() == 0 for value in regularizers.values()), (
        f"driver '{name}': non-scalar regulariser"
    )
    (out.square().mean() + sum(regularizers.values())).backward()
    assert_grads_reach(driver)
    driver.eval()
    assert torch.equal(driver(signals), driver(signals)), f"driver '{name}': eval not deterministic"
    changed = {k: v.clone() for k, v in signals.items()}
    for key in driver.signals:
        changed[key][:, 2] = make_signals(2, 3, torch.Generator().manual_seed(9))[key][:, 2]
    torch.testing.assert_close(driver(changed)[:, :2], driver(signals)[:, :2])
    missing = {k: v for k, v in signals.items() if k != driver.signals[0]}
    try:
        driver(missing)
    except SignalError as error:
        assert f"needs the driving signal '{driver.signals[0]}'" in str(error), f"driver '{name}': {error}"
    else:
        raise AssertionError(f"driver '{name}' accepted signals without '{driver.signals[0]}'")
