"""The LCA method's anchor tokens: each anchor's canonical position alone, Fourier-encoded."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.tokenizer import AnchorTokens, Tokenizer, TokenizerInputs
from lca.model.fourier import fourier_features


class FourierConfig(ComponentConfig):
    """Config of the ``fourier`` tokenizer."""

    bands: int = Field(6, ge=1)
    """Frequency bands of the positional encoding (2^(bands-1) * pi resolves ~1/2^(bands-1) m)."""
    part_embedding: bool = True
    """Add a learned embedding of each anchor's body-part label (parts at the same place still differ)."""


class FourierTokenizer(Tokenizer):
    """``LayerNorm(Linear(fourier(xyz)) + part embedding)``: the same tokens for every person of the same
    shape; what the person looks like reaches the anchors only through the backbone's attention."""

    Config: ClassVar[type[FourierConfig]] = FourierConfig
    test_config: ClassVar[dict[str, Any]] = {"bands": 3}

    def __init__(self, config: FourierConfig, *, dim: int, num_parts: int, **context: Any) -> None:
        super().__init__()
        self.config = config
        self.proj = nn.Linear(3 * (1 + 2 * config.bands), dim)
        self.part_embed = nn.Embedding(num_parts, dim) if config.part_embedding else None
        self.norm = nn.LayerNorm(dim)

    def position(self, inputs: TokenizerInputs) -> Tensor:
        """The un-normalised tokens ``[B, N, dim]`` (position and part), for tokenizers that add to them."""
        anchors = inputs.anchors
        if anchors.dim() != 3 or anchors.shape[-1] != 3:
            raise ValueError(f"tokenizer: anchors must be [B, N, 3]; got {tuple(anchors.shape)}")
        x = self.proj(fourier_features(anchors, self.config.bands))
        if self.part_embed is not None:
            if inputs.part_labels.shape != anchors.shape[:2]:
                raise ValueError(
                    f"tokenizer: part_labels must be [B, N] = {list(anchors.shape[:2])}; "
                    f"got {list(inputs.part_labels.shape)}"
                )
            x = x + self.part_embed(inputs.part_labels.long())
        return x

    def forward(self, inputs: TokenizerInputs) -> AnchorTokens:
        return AnchorTokens(self.norm(self.position(inputs)))
