"""ACLNet: affinity contrastive learning for skeleton-based human activity understanding."""

__version__ = "0.1.0"
