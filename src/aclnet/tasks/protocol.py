"""The `protocol:` section that the retrieval tasks own: which samples train, which form the gallery and
each probe set, as selections of sample fields (`aclnet.data.selection`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from aclnet.config.schema import Section
from aclnet.data.selection import Selection


class ProbeSetConfig(Section):
    """One probe set of a retrieval protocol and the gallery it is matched against."""

    select: Selection = Field(description="sample fields selecting the probes, e.g. {condition: bg}")
    gallery: Literal["self"] | Selection | None = Field(
        None, description="None: the protocol's gallery; 'self': the probe set is its own gallery (a probe's own "
        "sequence excluded); or a selection of its own"
    )


class ProtocolConfig(Section):
    """Which samples train, which form the gallery and each probe set (gait and re-identification).

    Every selection maps sample fields (`subject`, `condition`, `view`, `sequence`, or any other field the
    reader puts in a sample's meta) to the values it keeps; a sample is selected when every field matches.
    Gallery and probe selections apply within the `test` selection.
    """

    identity_field: str = Field("subject", description="sample field naming the person")
    view_field: str = Field("view", description="sample field naming the camera view")
    train: Selection = Field(description="samples that train")
    test: Selection = Field(description="samples that the gallery and the probes come from")
    gallery: Selection = Field(default_factory=dict, description="the default gallery")
    probes: dict[str, ProbeSetConfig] = Field(description="named probe sets, e.g. nm, bg, cl")
    exclude_identical_view: bool = Field(
        True, description="gait: leave the probe's own view out (the diagonal of the view table)"
    )
    test_flip: bool = Field(False, description="embed each test sequence and its time reversal, averaged (an "
                            "option to choose on validation data; GaitGraph's code does not do it)")
    tracklets: int | None = Field(
        None, ge=1, le=100_000, description="cut every test sequence into consecutive tracklets of this many frames "
        "(the last, shorter rest dropped; a sequence shorter than one tracklet stays whole), each scored as a probe "
        "and a gallery entry of its own (TranSG: 40; in a probe set that is its own gallery only the probe itself "
        "is left out, its sibling tracklets stay); None: whole sequences")
    min_frames: int = Field(1, ge=1, le=100_000, description="sequences with fewer frames are left out of training "
                            "and test, and counted in the report (GaitGraph: 61)")

    @field_validator("probes")
    @classmethod
    def _some_probes(cls, value: dict[str, ProbeSetConfig]) -> dict[str, ProbeSetConfig]:
        if not value:
            raise ValueError("a protocol needs at least one probe set")
        return value
