"""The ACLNet losses: inter-class affinity (Motion Families) and intra-class margin contrastive losses."""

from aclnet.losses.affinity import InterClassAffinityLoss
from aclnet.losses.margin import IntraClassMarginLoss
from aclnet.losses.metric import SupConLoss
from aclnet.losses.scaling import scale_for_small_dataset

__all__ = ["InterClassAffinityLoss", "IntraClassMarginLoss", "SupConLoss", "scale_for_small_dataset"]
