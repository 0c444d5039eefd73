"""``smplx-pose``: SMPL-X body, hand and jaw pose -> embedding (axis-angle in, 6D rotations inside)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.driver import Driver
from lca.rotations import axis_angle_to_matrix, matrix_to_rot6d

_JOINTS = {"body_pose": 21, "left_hand_pose": 15, "right_hand_pose": 15, "jaw_pose": 1}


class SmplxPoseConfig(ComponentConfig):
    out_dim: int = Field(128, ge=1)
    """Embedding width."""
    hidden_dim: int = Field(256, ge=1)
    """Hidden width of the MLP."""
    num_layers: int = Field(2, ge=0)
    """Hidden layers of the MLP."""


class SmplxPose(Driver):
    """Each joint's axis-angle -> rotation matrix -> 6D (first two columns, Zhou et al. 2019), minus the
    identity's 6D so the rest pose is the zero vector; all 52 joints concatenated (312 values) -> MLP.

    6D is continuous where axis-angle is not (at pi, where the axis flips), which is why it is used inside.
    """

    Config: ClassVar[type[SmplxPoseConfig]] = SmplxPoseConfig
    test_config: ClassVar[dict[str, Any]] = {"out_dim": 8, "hidden_dim": 16}
    signals: ClassVar[tuple[str, ...]] = tuple(_JOINTS)

    def __init__(self, config: SmplxPoseConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = 6 * sum(_JOINTS.values())
        for _ in range(config.num_layers):
            layers += [nn.Linear(width, config.hidden_dim), nn.SiLU()]
            width = config.hidden_dim
        layers.append(nn.Linear(width, config.out_dim))
        self.mlp = nn.Sequential(*layers)
        self.register_buffer("identity6d", matrix_to_rot6d(torch.eye(3)), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.config.out_dim

    def forward(self, signals: dict[str, Tensor]) -> Tensor:
        rotvecs = torch.cat(
            [self.signal(signals, name, [3 * n]).unflatten(-1, (n, 3)) for name, n in _JOINTS.items()], dim=2
        )  # [B, M, 52, 3]
        six = matrix_to_rot6d(axis_angle_to_matrix(rotvecs)) - self.identity6d.to(rotvecs.dtype)
        return self.mlp(six.flatten(2))
