"""Generated skeleton data: action classes in confusable groups (`actions`) and walking gait (`gait`).

Both generators build a body from any layout and animate it (`body`: forward kinematics without per-frame
loops), and add subject variation, camera views, noise and missing joints. Everything is deterministic from
`seed`; it is the default data of the demo and of fast tests.
"""

from aclnet.data.synthetic.actions import confusable_groups, make_action_dataset
from aclnet.data.synthetic.gait import make_gait_dataset

__all__ = ["confusable_groups", "make_action_dataset", "make_gait_dataset"]
