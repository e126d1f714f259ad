"""Using a trained model from Python: `aclnet.load(...).predict / embed / timeline / gallery` and the input rules."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import aclnet
from aclnet.data.annotations import write_annotations
from aclnet.data.sample import Sample, SampleSet
from aclnet.data.synthetic import make_action_dataset, make_gait_dataset
from aclnet.errors import InputError
from aclnet.inference.inputs import ARRAY_FORMAT, guess_format, read_inputs
from aclnet.inference.loading import PIPELINE_SEED, LoadedModel
from aclnet.inference.results import Gallery


@pytest.fixture(scope="session")
def action(runs) -> LoadedModel:
    return aclnet.load(runs["action"])


@pytest.fixture(scope="session")
def gait(runs) -> LoadedModel:
    return aclnet.load(runs["gait"] / "latest.pt")


def samples(count: int = 12, seed: int = 3) -> list[Sample]:
    """Generated action samples (25 NTU joints, 3D), one per class."""
    return make_action_dataset(num_classes=12, samples_per_class=1, num_subjects=3, seed=seed).samples[:count]


def walks(seed: int = 1) -> list[Sample]:
    """Generated walks (17 COCO joints, 2D pixels with scores)."""
    return make_gait_dataset(num_subjects=3, views=[0], seed=seed).samples


def reference(model: LoadedModel, sample: Sample) -> tuple[np.ndarray | None, np.ndarray]:
    """Clip-averaged softmax and normalised clip-averaged pooled features, computed directly from the test
    pipeline and the network (independently of the API)."""
    clips = model.pipeline(sample, np.random.default_rng(PIPELINE_SEED))
    with torch.no_grad():
        out = model.model.predict(torch.from_numpy(clips))
        features = out.pooled.double()
        if model.task.time_flip:
            features = (features + model.model.predict(torch.from_numpy(clips).flip(2)).pooled.double()) / 2
    probabilities = None if out.logits is None else torch.softmax(out.logits.double(), 1).mean(0).numpy()
    mean = features.mean(0).numpy()
    return probabilities, mean / np.linalg.norm(mean)


# ---------------------------------------------------------------------------------------------------------
# Loading and predicting
# ---------------------------------------------------------------------------------------------------------


def test_loaded_model_describes_its_input(action, gait) -> None:
    assert (action.layout.name, action.layout.num_joints, action.keypoint_channels, action.has_score) == (
        "nturgb+d", 25, 3, False)
    assert (gait.layout.name, gait.keypoint_channels, gait.has_score) == ("coco", 2, True)
    assert len(action.classes) == 12 and action.output == "class_scores" and gait.output == "embeddings"
    assert action.clip_length == 16 and "looped" in action.short_sequence_rule
    assert gait.clip_length == 16 and "temporal_window" in gait.short_sequence_rule


def test_probabilities_are_the_softmax_of_the_logits_on_the_pipeline_output(action) -> None:
    sample = samples()[4]
    expected, _ = reference(action, sample)
    [prediction] = action.predict(sample.keypoint[0], top_k=3)
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-6)
    order = np.argsort(-expected)[:3]
    assert [c.index for c in prediction.top_k] == list(order)
    assert [c.name for c in prediction.top_k] == [action.classes[i] for i in order]
    assert [c.probability for c in prediction.top_k] == pytest.approx(expected[order].tolist(), abs=1e-6)
    assert prediction.label == action.classes[order[0]] and prediction.input == "input[0]"


def test_tvc_and_mtvc_arrays_and_samples_agree(action) -> None:
    sample = samples()[0]
    results = action.predict([sample.keypoint[0], sample.keypoint, sample, torch.from_numpy(sample.keypoint)])
    assert [p.input for p in results] == ["input[0]", "input[1]", sample.sample_id, "input[3]"]
    for other in results[1:]:
        np.testing.assert_allclose(other.probabilities, results[0].probabilities, atol=1e-7)
    assert len(results[0].top_k) == 5
    assert len(action.predict(sample.keypoint, top_k=100)[0].top_k) == 12  # at most the classes


def test_a_batch_of_different_lengths_equals_one_by_one(action) -> None:
    arrays = [s.keypoint[0][:length] for s, length in zip(samples(3), (40, 9, 23))]  # 9: shorter than the clip
    batch = action.predict(arrays)
    assert len(batch) == 3
    for array, result in zip(arrays, batch):
        expected, _ = reference(action, Sample("x", array[None], 0))
        np.testing.assert_allclose(result.probabilities, expected, atol=1e-6)
    again = action.predict(arrays)  # deterministic
    for a, b in zip(batch, again):
        np.testing.assert_array_equal(a.probabilities, b.probabilities)


def test_files_give_the_same_numbers_as_the_array(action, tmp_path) -> None:
    first, second = samples(2)
    x = first.keypoint[0]
    expected = action.predict(x)[0].probabilities
    np.save(tmp_path / "one.npy", x)
    np.savez(tmp_path / "one.npz", x)
    np.savez(tmp_path / "named.npz", walk=first.keypoint, other=second.keypoint[0])
    np.savetxt(tmp_path / "plain.csv", x.reshape(len(x), -1), delimiter=",")
    header = ",".join(["frame"] + [f"j{v}_{c}" for v in range(25) for c in "xyz"])
    indexed = np.concatenate([np.arange(len(x))[:, None] + 100, x.reshape(len(x), -1)], axis=1)
    np.savetxt(tmp_path / "indexed.csv", indexed, delimiter=",", header=header, comments="")
    np.savetxt(tmp_path / "spaces.txt", indexed)  # UTKinect's layout: frame id, then the numbers
    for name in ("one.npy", "one.npz", "plain.csv", "indexed.csv", "spaces.txt"):
        [result] = action.predict(tmp_path / name)
        assert result.input == name
        np.testing.assert_allclose(result.probabilities, expected, atol=1e-7, err_msg=name)
    named = action.predict(str(tmp_path / "named.npz"))
    assert [p.input for p in named] == ["named.npz:walk", "named.npz:other"]
    np.testing.assert_allclose(named[0].probabilities, expected, atol=1e-7)
    np.testing.assert_allclose(named[1].probabilities, action.predict(second.keypoint)[0].probabilities, atol=1e-7)


def test_a_pyskl_pickle_and_a_folder(action, tmp_path) -> None:
    chosen = samples(3)
    write_annotations(SampleSet(chosen, {}, "nturgb+d", [f"class{i}" for i in range(12)]), tmp_path / "set.pkl")
    results = action.predict(tmp_path / "set.pkl")
    assert [p.input for p in results] == [s.sample_id for s in chosen]
    for sample, result in zip(chosen, results):
        np.testing.assert_allclose(result.probabilities, action.predict(sample.keypoint)[0].probabilities, atol=1e-7)
    sequences = action.sequences(tmp_path / "set.pkl")
    assert [s.identity for s in sequences] == [f"class{s.label}" for s in chosen]
    folder = tmp_path / "arrays"
    folder.mkdir()
    for sample in chosen:
        np.save(folder / f"{sample.sample_id}.npy", sample.keypoint)
    assert [p.input for p in action.predict(folder)] == sorted(f"{s.sample_id}.npy" for s in chosen)


# ---------------------------------------------------------------------------------------------------------
# Embeddings and galleries
# ---------------------------------------------------------------------------------------------------------


def test_embed_gives_the_normalised_pooled_features(gait) -> None:
    chosen = walks()[:3]
    embeddings = gait.embed(chosen)
    assert embeddings.shape == (3, gait.model.backbone.out_channels) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    for sample, row in zip(chosen, embeddings):
        np.testing.assert_allclose(row, reference(gait, sample)[1], atol=1e-5)
    raw = gait.embed(chosen, normalize=False)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), embeddings, atol=1e-5)


def test_a_2d_model_with_scores_takes_x_y_score_arrays(gait) -> None:
    walk = walks()[0]
    stacked = np.concatenate([walk.keypoint, walk.score[..., None]], axis=-1)  # (M, T, 17, 3): x, y, score
    np.testing.assert_allclose(gait.embed(stacked[0]), gait.embed(walk), atol=1e-6)


def test_gallery_ranks_a_sequences_own_embedding_first(gait, tmp_path) -> None:
    chosen = walks()
    gallery = gait.gallery(chosen)
    assert gallery.identities == [str(s.meta["subject"]) for s in chosen]
    probe = chosen[7]
    [matches] = gallery.match(gait.embed(probe), top_k=3)
    assert matches[0].sequence == probe.sample_id and matches[0].identity == str(probe.meta["subject"])
    assert matches[0].distance == pytest.approx(0.0, abs=1e-3)
    assert len({m.identity for m in matches}) == 3 and [m.distance for m in matches] == sorted(
        m.distance for m in matches)
    gallery.save(tmp_path / "gallery.npz")
    loaded = Gallery.load(tmp_path / "gallery.npz")
    assert loaded.identities == gallery.identities and loaded.names == gallery.names
    assert loaded.match(gait.embed(probe), top_k=1)[0][0].sequence == probe.sample_id
    with pytest.raises(InputError, match=r"expected \(P, 8\) \(same model\?\)"):
        loaded.match(np.ones((1, 5)))
    with pytest.raises(InputError, match="give it with --gallery"):
        gait.embed(tmp_path / "gallery.npz")


def test_a_model_without_classifier_embeds_but_does_not_predict(gait) -> None:
    headless = LoadedModel(**{**gait.__dict__})
    headless.model = type(gait.model)(gait.model.backbone, None)
    headless.model.eval()
    with pytest.raises(InputError, match="no classifier"):
        headless.predict(walks()[0])
    assert headless.embed(walks()[0]).shape == (1, gait.model.backbone.out_channels)


# ---------------------------------------------------------------------------------------------------------
# Timelines
# ---------------------------------------------------------------------------------------------------------


def test_timeline_windows_over_two_concatenated_actions(action) -> None:
    first, second = samples()[0], samples()[9]
    assert first.label != second.label
    long = np.concatenate([first.keypoint[0], second.keypoint[0]])
    t, n, s = len(long), 20, 7
    [timeline] = action.timeline(long, window=n, stride=s)
    count = (t - n) // s + 1  # windows that fit from frame 0, then one more ending at the last frame
    assert (t - n) % s != 0 and timeline.num_frames == t and len(timeline.windows) == count + 1
    assert timeline.starts.tolist() == [i * s for i in range(count)] + [t - n]
    assert [w.end for w in timeline.windows] == [i * s + n - 1 for i in range(count)] + [t - 1]
    for window, row in zip(timeline.windows[::4], timeline.probabilities[::4]):
        expected = action.predict(long[window.start:window.end + 1])[0].probabilities
        np.testing.assert_allclose(row, expected, atol=1e-6)
        assert window.label == action.classes[int(np.argmax(row))] and window.probability == pytest.approx(row.max())
    frames = timeline.frame_probabilities()
    assert frames.shape == (t, 12)
    np.testing.assert_allclose(frames[0], timeline.probabilities[0], atol=1e-12)  # only window 0 covers frame 0
    np.testing.assert_allclose(frames[s], timeline.probabilities[:2].mean(0), atol=1e-12)
    np.testing.assert_allclose(frames[-1], timeline.probabilities[-1], atol=1e-12)  # only the end window
    assert timeline.frame_labels().shape == (t,)
    [short] = action.timeline(long[:10], window=n, stride=s)  # shorter than the window: the whole sequence
    assert short.starts.tolist() == [0] and short.windows[0].end == 9
    with pytest.raises(InputError, match="stride must be"):
        action.timeline(long, window=n, stride=0)


def test_window_starts_cover_the_end() -> None:
    from aclnet.inference.results import window_starts

    assert window_starts(70, 30, 15).tolist() == [0, 15, 30, 40]  # frames 60-69 were in no window before
    assert window_starts(60, 30, 15).tolist() == [0, 15, 30]  # the last window already ends at frame 59
    assert window_starts(30, 30, 7).tolist() == [0] and window_starts(10, 30, 7).tolist() == [0]


# ---------------------------------------------------------------------------------------------------------
# Input that does not fit the model
# ---------------------------------------------------------------------------------------------------------


def _action_input() -> np.ndarray:
    return samples(1)[0].keypoint[0][:30].copy()  # (30, 25, 3)


@pytest.mark.parametrize(("make", "patterns"), [
    (lambda: _action_input()[:, :17], ["17 joints", "layout 'nturgb\\+d' has 25 joints", "\\(T, 25, 3\\)",
                                       "given shape \\(30, 17, 3\\)"]),
    (lambda: _action_input()[..., :2], ["2D input \\(x, y\\) to a 3D model", "\\(T, 25, 3\\)",
                                        "given shape \\(30, 25, 2\\)"]),
    (lambda: _action_input()[:0], ["no frames", "T >= 1", "given shape \\(0, 25, 3\\)"]),
    (lambda: _action_input()[None, None], ["expected \\(M, T, 25, 3\\)", "given shape \\(1, 1, 30, 25, 3\\)"]),
    (lambda: np.zeros((30, 25, 3)), ["every frame is all zeros", "given shape \\(30, 25, 3\\)"]),
])
def test_bad_input_names_the_expected_and_the_given_shape(action, make, patterns) -> None:
    with pytest.raises(InputError) as err:
        action.predict(make())
    message = str(err.value)
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinite_values_are_refused_with_their_place(action, bad) -> None:
    x = _action_input()
    x[12, 4, 1] = bad
    with pytest.raises(InputError, match=r"1 NaN or infinite keypoint value\(s\) in shape \(1, 30, 25, 3\), the "
                                         r"first at \(person, frame, joint, channel\) \(0, 12, 4, 1\)"):
        action.predict(x)


def test_partly_zero_frames_and_short_sequences_are_fine(action) -> None:
    x = _action_input()
    x[:10] = 0  # ten empty frames
    x[10:, :5] = 0  # missing joints
    assert len(action.predict(x)) == 1
    assert len(action.predict(x[10:13])) == 1  # 3 frames, shorter than the 16-frame clip: looped


def test_2d_and_3d_mismatches_for_a_2d_model_with_scores(gait) -> None:
    walk = walks()[0]
    with pytest.raises(InputError, match=r"2 channels, but the model takes x, y and a score per joint: expected "
                                         r"\(M, T, 17, 3\) or \(T, 17, 3\) \(x, y, score\).*given shape \(69, 17, 2\)"):
        gait.embed(walk.keypoint[0])
    depth = Sample("deep", np.concatenate([walk.keypoint, walk.keypoint[..., :1]], -1), 0, walk.score)
    with pytest.raises(InputError, match=r"3D input \(x, y, z\) to a 2D model.*given shape \(1, 69, 17, 3\)"):
        gait.embed(depth)
    with pytest.raises(InputError, match=r"25 joints, but the model's layout 'coco' has 17 joints"):
        gait.embed(np.ones((20, 25, 3)))


def test_csv_rows_that_do_not_fit_and_files_that_cannot_be_guessed(action, tmp_path) -> None:
    np.savetxt(tmp_path / "wide.csv", np.ones((4, 52)), delimiter=",")  # 17 joints x 3 and a frame index
    with pytest.raises(InputError, match=r"rows of 52 numbers do not fit the model's 25 joints.*50 or 75.*"
                                         r"given shape \(4, 52\)"):
        action.predict(tmp_path / "wide.csv")
    np.savetxt(tmp_path / "flat.csv", np.ones((4, 50)), delimiter=",")  # 25 joints x 2: 2D
    with pytest.raises(InputError, match=r"2D input \(x, y\) to a 3D model.*given shape \(4, 25, 2\)"):
        action.predict(tmp_path / "flat.csv")
    (tmp_path / "empty.csv").write_text("a,b,c\n")
    with pytest.raises(InputError, match="no rows of numbers"):
        action.predict(tmp_path / "empty.csv")
    (tmp_path / "data.mat").write_bytes(b"x")
    with pytest.raises(InputError, match="cannot guess the format.*--format"):
        action.predict(tmp_path / "data.mat")
    with pytest.raises(InputError, match="needs the joint count"):
        read_inputs(tmp_path / "flat.csv")
    with pytest.raises(InputError, match="no such file"):
        action.predict(tmp_path / "missing.npy")


def test_format_guessing(tmp_path) -> None:
    detections = [{"image_id": "0.jpg", "keypoints": [1.0] * 51}]
    (tmp_path / "walk.json").write_text(json.dumps(detections))
    (tmp_path / "clip.json").write_text(json.dumps({"data": [], "label": "x"}))
    (tmp_path / "other.json").write_text(json.dumps({"frames": []}))
    (tmp_path / "S001C001P001R001A001.skeleton").write_text("0\n")
    (tmp_path / "casia.csv").write_text("image_name,x0\nfolder/001-nm-01-090/000001.jpg,1\n")
    (tmp_path / "plain.csv").write_text("1,2\n3,4\n")
    guesses = {name: guess_format(tmp_path / name) for name in ("walk.json", "clip.json", "casia.csv", "plain.csv",
                                                                  "S001C001P001R001A001.skeleton")}
    assert guesses == {"walk.json": "pose-json", "clip.json": "kinetics-json", "casia.csv": "casia-b",
                       "plain.csv": ARRAY_FORMAT, "S001C001P001R001A001.skeleton": "ntu"}
    with pytest.raises(InputError, match=r"cannot guess the format of this JSON.*keys \['frames'\].*--format"):
        guess_format(tmp_path / "other.json")
    assert guess_format(tmp_path) == "ntu"  # .skeleton files decide a folder
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "walk.json").write_text(json.dumps(detections))
    np.save(mixed / "x.npy", np.ones((2, 2, 2)))
    with pytest.raises(InputError, match="both array and pose-json files.*--format"):
        guess_format(mixed)
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "a.mat").write_bytes(b"")
    with pytest.raises(InputError, match=r"no file of a known kind \(\.mat\)"):
        guess_format(unknown)
