"""Gait recognition and person re-identification: the model embeds sequences, and each probe sequence is
matched against a gallery by the Euclidean distance between L2-normalised embeddings.

Which sequences train and which form the gallery and each probe set is data (`protocol:` in the
configuration, selections by sample fields), so CASIA-B's protocols and one's own are the same code.
The classes of training are the training identities: ACLNet's confusion statistics, Motion Families and
prototypes are over identities, and the test uses the embeddings, not the classifier.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from aclnet.config import ExperimentConfig
from aclnet.data.pipeline import Pipeline
from aclnet.data.sample import Sample
from aclnet.data.selection import describe, field_value, select, selection_mask
from aclnet.data.splits import hold_out, hold_out_within
from aclnet.engine.forward import run_model
from aclnet.engine.retrieval import cross_view_rank1, euclidean_distances, normalised_rows, rank_k_and_map
from aclnet.engine.seam import Evaluation, TaskData, TrainingScore
from aclnet.errors import InputError
from aclnet.models.skeleton_model import SkeletonModel
from aclnet.skeleton import get_layout
from aclnet.tasks.base import ReportTable, Task, chosen
from aclnet.tasks.components import load_sample_set
from aclnet.tasks.protocol import ProtocolConfig


@dataclasses.dataclass
class ProbeMatch:
    """One probe set against its gallery: distances (P, G), identities and views of both sides, and
    whether the probe set is its own gallery (a probe's own sequence is then excluded)."""

    distances: np.ndarray
    probe_ids: np.ndarray
    probe_views: np.ndarray
    gallery_ids: np.ndarray
    gallery_views: np.ndarray
    same_set: bool


class RetrievalTask(Task):
    """What gait recognition and re-identification share: protocol selections, identity labels, embeddings."""

    output = "embeddings"
    sections = {"protocol": ProtocolConfig}
    classes_meaning = "training identities (the embedding, not the classifier, serves new ones)"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        protocol = config.section("protocol")
        assert isinstance(protocol, ProtocolConfig)
        self.protocol = protocol
        self.too_short: dict[str, int] = {}
        """Training and test sequences left out for having fewer than `protocol.min_frames` frames."""

    @property
    def time_flip(self) -> bool:
        return self.protocol.test_flip

    def load_data(self, *, for_training: bool = True) -> TaskData:
        config = self.config
        protocol = self.protocol
        sample_set = load_sample_set(config)
        layout = get_layout(config.data.layout or sample_set.layout)
        train = select(sample_set.samples, protocol.train)
        test = select(sample_set.samples, protocol.test)
        self.too_short = {"train": sum(s.num_frames < protocol.min_frames for s in train),
                          "test": sum(s.num_frames < protocol.min_frames for s in test)}
        train = [s for s in train if s.num_frames >= protocol.min_frames]
        test = [s for s in test if s.num_frames >= protocol.min_frames]
        for part, key in ((train, "train"), (test, "test")):
            if not part:
                longer = f" with at least {protocol.min_frames} frames" if protocol.min_frames > 1 else ""
                raise InputError(f"protocol.{key} ({describe(getattr(protocol, key))}) selects none of the "
                                 f"{len(sample_set.samples)} samples{longer}")
        shared = sorted({s.sample_id for s in train} & {s.sample_id for s in test})
        if shared:
            raise InputError(f"protocol: {len(shared)} sequence(s) are selected for both training and test, "
                             f"e.g. '{shared[0]}'; training sequences must not be probes or gallery")
        if protocol.tracklets is not None:  # what is scored: every tracklet of a test sequence
            test = [piece for s in test for piece in tracklets(s, protocol.tracklets)]
        identity = protocol.identity_field
        val: list[Sample] = []
        if for_training:
            if config.train.select_on == "test":
                val = test
            elif config.train.select_on == "val":
                # A test of the training identities (re-identification) keeps them all in training.
                split = hold_out_within if self._shares_identities(test, train) else hold_out
                train, val = split(train, identity, config.data.holdout_fraction, config.train.seed)
        identities = sorted({field_value(s, identity) for s in train})
        index = {value: i for i, value in enumerate(identities)}
        train = [dataclasses.replace(s, label=index[field_value(s, identity)]) for s in train]
        return TaskData(train, val, test, layout, [str(value) for value in identities])

    def evaluate(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                 device: torch.device) -> Evaluation:
        return self.evaluate_embeddings(self._features(model, samples, pipeline, device), samples)

    def evaluate_embeddings(self, features: np.ndarray, samples: list[Sample], *,
                            normalise: bool = True) -> Evaluation:
        """The protocol's probe sets against their galleries, from one embedding (N, D) per sample, compared
        by Euclidean distance after L2 normalisation (`normalise`, as for a model's embeddings) or as given."""
        protocol = self.protocol
        features = normalised_rows(features) if normalise else np.asarray(features, dtype=np.float64)
        ids = self._identities(samples)
        views = np.array([field_value(s, protocol.view_field) for s in samples])
        matches: dict[str, ProbeMatch] = {}
        for name, probe in protocol.probes.items():
            in_probe = selection_mask(samples, probe.select)
            same_set = probe.gallery == "self"
            gallery = protocol.gallery if probe.gallery is None else probe.gallery
            in_gallery = in_probe if same_set else selection_mask(samples, gallery)
            for role, mask, selection in (("probe", in_probe, probe.select), ("gallery", in_gallery, gallery)):
                if not mask.any():
                    raise InputError(f"protocol: the {role} of probe set '{name}' ({describe(selection)}) selects "
                                     f"none of the {len(samples)} evaluated sequences")
            if not same_set and (in_probe & in_gallery).any():
                raise InputError(f"protocol: probe set '{name}' and its gallery share "
                                 f"{int((in_probe & in_gallery).sum())} sequence(s); use gallery: self for a "
                                 "probe set that is its own gallery")
            matches[name] = ProbeMatch(euclidean_distances(features[in_probe], features[in_gallery]),
                                       ids[in_probe], views[in_probe], ids[in_gallery], views[in_gallery], same_set)
        evaluation = self.score(matches)
        evaluation.details["sequences"] = len(samples)
        if protocol.min_frames > 1:
            evaluation.details["too_short"] = dict(self.too_short)
        return evaluation

    def score(self, matches: dict[str, ProbeMatch]) -> Evaluation:
        """The task's metrics over its probe sets."""
        raise NotImplementedError

    def validate(self, model: SkeletonModel, data: TaskData, pipeline: Pipeline,
                 device: torch.device) -> dict[str, float]:
        """Held-out identities: the protocol on them (`evaluate`). Held-out sequences of the training identities:
        rank-1 of each against the training sequences (its nearest training sequence has its identity), under
        the primary metric's name, since the protocol's probe sets need sequences the hold-out does not keep."""
        if not self._shares_identities(data.val, data.train):
            return super().validate(model, data, pipeline, device)
        probe, gallery = (normalised_rows(self._features(model, part, pipeline, device))
                          for part in (data.val, data.train))
        result = rank_k_and_map(euclidean_distances(probe, gallery), self._identities(data.val),
                                self._identities(data.train), ks=(1,))
        return {self.primary_metric: float(result.rank[1])}

    def _features(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                  device: torch.device) -> np.ndarray:
        """The model's features (N, D) of the samples, in the samples' order."""
        outputs = run_model(model, self.loader(samples, pipeline, train=False), device, self.use_amp(device),
                            time_flip=self.time_flip)
        return outputs.features[np.argsort(outputs.indices)]

    def _identities(self, samples: list[Sample]) -> np.ndarray:
        """The identity field of each sample."""
        return np.array([field_value(s, self.protocol.identity_field) for s in samples])

    def _shares_identities(self, samples: list[Sample], others: list[Sample]) -> bool:
        """Whether some of `samples` show an identity of `others`."""
        known = set(self._identities(others).tolist())
        return any(value in known for value in self._identities(samples).tolist())

    def training_score(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                       device: torch.device) -> TrainingScore:
        """Leave-one-out rank-1 among training sequences: each one's nearest other sequence (Euclidean, L2-
        normalised embeddings) has its identity; over the sequences whose identity has another one. Chance: the
        mean share of their others that are of their identity."""
        features, ids = normalised_rows(self._features(model, samples, pipeline, device)), self._identities(samples)
        result = rank_k_and_map(euclidean_distances(features, features), ids, ids, ks=(1,), same_set=True)
        same = (ids[:, None] == ids[None, :]).sum(1) - 1
        chance = 100.0 * float(np.mean(same[same > 0] / max(len(ids) - 1, 1))) if (same > 0).any() else 0.0
        return TrainingScore("leave-one-out rank1", float(result.rank[1]), chance)


class GaitTask(RetrievalTask):
    """Gait recognition (GaitGraph's CASIA-B protocol): for each probe set, rank-1 per (probe view,
    gallery view) with the identical view excluded, averaged over gallery and then probe views."""

    name = "gait"
    primary_metric = "mean"

    def score(self, matches: dict[str, ProbeMatch]) -> Evaluation:
        exclude = self.protocol.exclude_identical_view
        values: dict[str, float] = {}
        tables: dict[str, Any] = {}
        for name, m in matches.items():
            table = cross_view_rank1(m.distances, m.probe_ids, m.probe_views, m.gallery_ids, m.gallery_views,
                                     exclude_identical_view=exclude)
            values[name] = float(table.mean)
            tables[name] = {"views": [int(v) if np.issubdtype(type(v), np.integer) else str(v) for v in table.views],
                            "matrix": np.round(table.matrix, 2).tolist(),
                            "per_probe_view": np.round(table.per_probe_view, 2).tolist()}
        values["mean"] = float(np.mean([values[name] for name in matches]))
        return Evaluation(values, {"view_tables": tables})

    def summary(self, report: dict[str, Any]) -> str:
        names = list(report["view_tables"])
        lines = [f"test (gait, {report['sequences']} sequences, rank-1 %, identical view "
                 f"{'excluded' if self.protocol.exclude_identical_view else 'included'}): "
                 + "  ".join(f"{n} {report[n]:.2f}" for n in [*names, "mean"])
                 + f"  [{chosen(report)}]"]
        for name in names:
            table = report["view_tables"][name]
            lines.append(f"probe {name}: rank-1 by probe view (rows) and gallery view (columns)")
            lines.append("       " + "".join(f"{v!s:>7}" for v in table["views"]) + "   mean")
            for view, row, mean in zip(table["views"], table["matrix"], table["per_probe_view"]):
                cells = "".join("      -" if np.isnan(x) else f"{x:7.1f}" for x in row)
                lines.append(f"{view!s:>7}{cells}  {mean:5.1f}")
        return "\n".join(lines)


    def result_tables(self, report: dict[str, Any]) -> list[ReportTable]:
        tables = report.get("view_tables") or {}
        rows = [[name, float(report[name])] for name in tables if name in report]
        if "mean" in report:
            rows.append([("mean", "mean"), float(report["mean"])])
        result = [ReportTable("Rank-1 (%) per probe set", ["probe set", "rank-1 (%)"], rows, {1})]
        for name, table in tables.items():
            views = [str(v) for v in table.get("views", [])]
            cells = [[view, *[float("nan") if x is None else float(x) for x in row],
                      ("" if mean is None else float(mean), "mean")]
                     for view, row, mean in zip(views, table.get("matrix", []), table.get("per_probe_view", []))]
            result.append(ReportTable(f"Probe set {name}: rank-1 (%) by probe view (rows) and gallery view (columns)",
                                      ["probe view \\ gallery view", *views, "mean"], cells,
                                      set(range(1, len(views) + 2))))
        if not tables:
            result.append(ReportTable("View tables", note="The report holds no view tables."))
        return result


class ReidTask(RetrievalTask):
    """Person re-identification (TranSG's settings): Rank-1/5/10 and mAP per probe set."""

    name = "reid"
    primary_metric = "rank1"

    def score(self, matches: dict[str, ProbeMatch]) -> Evaluation:
        values: dict[str, float] = {}
        without_match: dict[str, int] = {}
        for name, m in matches.items():
            result = rank_k_and_map(m.distances, m.probe_ids, m.gallery_ids, ks=(1, 5, 10), same_set=m.same_set)
            for k, value in result.rank.items():
                values[f"{name}_rank{k}"] = float(value)
            values[f"{name}_map"] = float(result.map)
            without_match[name] = int(result.probes_without_match)
        values["rank1"] = float(np.mean([values[f"{name}_rank1"] for name in matches]))
        values["map"] = float(np.mean([values[f"{name}_map"] for name in matches]))
        return Evaluation(values, {"probes_without_match": without_match})

    def summary(self, report: dict[str, Any]) -> str:
        names = list(report["probes_without_match"])
        lines = [f"test (re-identification, {report['sequences']} sequences): mean rank-1 {report['rank1']:.2f}  "
                 f"mAP {report['map']:.2f}  [{chosen(report)}]",
                 f"{'setting':<12}{'rank-1':>8}{'rank-5':>8}{'rank-10':>8}{'mAP':>8}  probes without a match"]
        for name in names:
            lines.append(f"{name:<12}" + "".join(f"{report[f'{name}_{k}']:8.2f}" for k in
                                                  ("rank1", "rank5", "rank10", "map"))
                         + f"  {report['probes_without_match'][name]}")
        return "\n".join(lines)

    def result_tables(self, report: dict[str, Any]) -> list[ReportTable]:
        settings = list(report.get("probes_without_match") or
                        sorted({k.rsplit("_", 1)[0] for k in report if k.endswith("_rank1")}))
        rows = [[s, *[float(report.get(f"{s}_{m}", float("nan"))) for m in ("rank1", "rank5", "rank10", "map")],
                 (report.get("probes_without_match") or {}).get(s, "")] for s in settings]
        result = [ReportTable("Settings", ["setting", "rank-1", "rank-5", "rank-10", "mAP", "probes without a match"],
                              rows, {1, 2, 3, 4, 5})]
        means = [[label, float(report[k])] for label, k in (("mean rank-1", "rank1"), ("mean mAP", "map"))
                 if k in report]
        if means:
            result.append(ReportTable("Means", ["mean over settings", "value"], means, {1}))
        return result


def tracklets(sample: Sample, length: int) -> list[Sample]:
    """The consecutive `length`-frame tracklets of a sequence (the shorter rest dropped), each a sample of its
    own (`ID#k`, its fields and a `tracklet` field k); a sequence shorter than `length` stays whole."""
    count = sample.num_frames // length
    if count == 0:
        return [sample]
    return [dataclasses.replace(
        sample, sample_id=f"{sample.sample_id}#{k}", keypoint=sample.keypoint[:, k * length:(k + 1) * length],
        score=None if sample.score is None else sample.score[:, k * length:(k + 1) * length],
        meta={**sample.meta, "tracklet": k}) for k in range(count)]
