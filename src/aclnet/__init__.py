"""ACLNet: affinity contrastive learning for skeleton-based human activity understanding."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from aclnet.inference.loading import LoadedModel


def load(checkpoint: Any, **kwargs: Any) -> LoadedModel:
    """`aclnet.inference.loading.load`: a trained model from its checkpoint alone (imported on first use, so that
    `import aclnet` stays light)."""
    from aclnet.inference.loading import load as _load

    return _load(checkpoint, **kwargs)
