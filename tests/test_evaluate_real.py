"""``mer evaluate-real``: scoring rules on a hand-made fixture (expected numbers worked out
by hand in the comments), label-file validation, and the CLI end to end on two real clips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mer.cli import app
from mer.errors import NoFaceDetectedError
from mer.evaluation import ClipNotFoundError, LabelFileError, evaluate_real, load_labels
from mer.evaluation.labels import LabelledClip, find_video, load_label_files
from mer.evaluation.pooled import micro_apex_error, pool
from mer.evaluation.report import summary_lines
from mer.evaluation.scoring import au12_baseline_frames, iou, match_intervals, score_clip
from mer.schemas import AU_NAMES, AnalysisResult, EmotionPrediction, Interval
from tests.helpers import fake_result


def event(onset, apex, offset, apex_range, aus=(), emotion="positive", confidence="high",
          kind="expression"):  # fmt: skip
    return {"onset": onset, "apex": apex, "offset": offset, "apex_range": list(apex_range),
            "aus": list(aus), "emotion": emotion, "confidence": confidence,
            "kind": kind}  # fmt: skip


def clip_entry(frames, events, rest=None):
    return {"fps": 10.0, "frames": frames, "resolution": [64, 48], "rest_frames": rest,
            "events": events, "blinks": [3, [7, 8]], "no_face_frames": []}  # fmt: skip


def interval(onset, apex, offset, kind="macro", emotion=None) -> Interval:
    """An interval; ``emotion``: a label, or None for a null emotion. Kinds the schema does
    not list yet (speech, blink ...) are built without validation."""
    emo = None if emotion is None else EmotionPrediction(
        label=emotion, score=0.7, probabilities={emotion: 0.7}, model="fake-1")  # fmt: skip
    fields = dict(onset=onset, apex=apex, offset=offset, onset_s=onset / 10, apex_s=apex / 10,
                  offset_s=offset / 10, duration_s=(offset - onset) / 10, kind=kind, score=0.8,
                  top_aus=[], emotion=emo)  # fmt: skip
    if kind in ("micro", "macro"):
        return Interval(**fields)
    return Interval.model_construct(**fields)


def result(frames: int, intervals: list[Interval], au: dict[int, dict[str, float]],
           au12_rest: float = 0.0) -> AnalysisResult:  # fmt: skip
    """A result with every AU 0 (AU12 ``au12_rest``) except the scores in ``au[frame]``."""
    res = fake_result(frames=frames)
    for f in res.frames:
        f.face = True
        f.au = {name: 0.0 for name in AU_NAMES} | {"AU12": au12_rest} | au.get(f.frame, {})
    res.intervals = intervals
    return res


def write_labels(path: Path, entries: dict) -> Path:
    path.write_text(json.dumps(entries))
    return path


@pytest.fixture
def clips(tmp_path: Path) -> list[LabelledClip]:
    """Clip A (100 frames, rest 0-9): a smile 20-39, speech 50-69, a surprise 70-89.
    Clip B (30 frames, no rest): a low-confidence negative 0-9, a medium one 20-29."""
    path = write_labels(tmp_path / "labels.json", {
        "a.mp4": clip_entry(100, [
            event(20, 30, 39, (28, 32), ["AU06", "AU12"], "positive", "high"),
            event(50, 60, 69, (50, 69), ["AU25", "AU26"], "other", "medium", "speech"),
            event(70, 80, 89, (78, 82), ["AU01", "AU02", "AU25"], "surprise", "medium"),
        ], rest=[0, 9]),
        "b.mp4": clip_entry(30, [
            event(0, 5, 9, (4, 6), ["AU04"], "negative", "low"),
            event(20, 25, 29, (24, 26), ["AU04", "AU15"], "negative", "medium"),
        ]),
    })  # fmt: skip
    return load_labels(path)


@pytest.fixture
def results() -> dict[str, AnalysisResult]:
    return {
        "a.mp4": result(100, [
            interval(20, 36, 39, emotion="positive"),  # e0, IoU 1; apex 6 frames off: miss
            interval(21, 30, 40, emotion="none"),  # on e0 too (IoU 19/21): second match -> FP
            interval(50, 55, 60, "micro", emotion="negative"),  # on speech: FP + error
            interval(75, 85, 94),  # e2: 15 / 25 = 0.6; apex 5 frames off: hit; null emotion
            interval(55, 60, 65, kind="speech"),  # a non-expression kind: not counted
        ], {
            30: {"AU12": 0.9, "AU06": 0.3, "AU25": 0.7},
            80: {"AU01": 0.6, "AU02": 0.5, "AU25": 0.2},
        }, au12_rest=0.1),
        "b.mp4": result(30, [
            interval(0, 2, 4, emotion="negative"),  # e0: IoU 5 / 10 = 0.5 exactly: match
            interval(20, 22, 23, emotion="none"),  # e1: IoU 4 / 10 = 0.4: FP
        ], {25: {"AU04": 0.8, "AU15": 0.1, "AU12": 0.6}}),
    }  # fmt: skip


def test_iou_inclusive_ranges() -> None:
    assert iou((0, 9), (0, 9)) == 1.0
    assert iou((0, 9), (0, 4)) == 0.5  # 5 shared frames of 10
    assert iou((0, 9), (10, 19)) == 0.0  # touching, no shared frame
    assert iou((0, 9), (9, 18)) == pytest.approx(1 / 19)  # one shared frame
    assert iou((5, 5), (5, 5)) == 1.0


def test_evaluation_does_not_import_torch() -> None:
    """Scoring real clips needs numpy only: the metrics come from ``mer.training.metrics``."""
    code = "import mer.evaluation, sys; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_matching_megc_rule(tmp_path, clips, results) -> None:
    a = clips[0].labels.events
    m = match_intervals(a, results["a.mp4"].intervals)
    assert [(x.interval, x.event, x.apex_hit) for x in m] == [(0, 0, False), (3, 2, True)]
    assert m[1].iou == 0.6
    # a double match goes to the better IoU, whatever the order or the onsets
    swapped = [results["a.mp4"].intervals[1], results["a.mp4"].intervals[0]]
    assert [(x.interval, x.event) for x in match_intervals(a, swapped)] == [(1, 0)]
    early = [interval(19, 30, 38), interval(20, 30, 39)]  # IoU 19/21 (earlier onset), 1.0
    assert [(x.interval, x.iou) for x in match_intervals(a, early)] == [(1, 1.0)]
    # one interval over two events takes the better one; the other event stays free
    two = [event(3, 6, 12, (5, 7)), event(0, 5, 9, (4, 6))]
    two_events = load_labels(write_labels(tmp_path / "two.json", {"t.mp4": clip_entry(20, two)}))
    both = match_intervals(two_events[0].labels.events, [interval(1, 5, 10)])
    assert [(x.interval, x.event, x.iou) for x in both] == [(0, 1, 0.8182)]  # 9/11 vs 8/12
    b = match_intervals(clips[1].labels.events, results["b.mp4"].intervals)
    assert [(x.interval, x.event, x.iou) for x in b] == [(0, 0, 0.5)]


def test_an_apex_that_is_not_scoreable_is_left_out_of_the_apex_hits(tmp_path) -> None:
    # a face held from the first frame to the last: its labelled apex is an arbitrary frame
    held = event(0, 60, 150, (0, 150), emotion="negative") | {"apex_scoreable": False}
    smile = event(160, 170, 180, (168, 172))
    entry = {"h.mp4": clip_entry(200, [held, smile])}
    clips = load_labels(write_labels(tmp_path / "h.json", entry))
    ivs = [interval(0, 120, 150), interval(160, 190, 180)]  # both matched, both apexes off
    m = match_intervals(clips[0].labels.events, ivs)
    assert [x.apex_hit for x in m] == [None, False]
    res = result(200, ivs, {})
    pooled = pool([score_clip(clips[0], res)])
    assert (pooled["apex"]["hits"], pooled["apex"]["n_matched"]) == (0, 1)
    assert pooled["spotting"]["tp"] == 2


def test_pooled_metrics(clips, results) -> None:
    m = pool([score_clip(c, results[c.name]) for c in clips])
    s = m["spotting"]
    # 4 expression events, 6 micro/macro intervals (the speech interval is not one), 3 TP
    assert (s["tp"], s["fp"], s["fn"], s["n_events"], s["n_intervals"]) == (3, 3, 1, 4, 6)
    assert (s["precision"], s["recall"], s["f1"]) == (0.5, 0.75, 0.6)
    assert (m["apex"]["hits"], m["apex"]["n_matched"]) == (2, 3)
    assert (m["apex"]["micro"]["n_events"], m["apex"]["micro"]["n_matched"]) == (0, 0)  # 10 fps

    au = m["au"]  # apexes: a#0 (high), a#2 (medium), b#1 (medium); b#0 is low: not scored
    assert au["n_apexes"] == 3
    assert au["scored_aus"] == ["AU01", "AU02", "AU04", "AU06", "AU12", "AU15", "AU25"]
    # AU12: TP at a#0, FP at b#1 -> 2/3; AU25: FP at a#0, FN at a#2 -> 0; AU02 0.5 counts
    assert au["f1"] == {"AU01": 1.0, "AU02": 1.0, "AU04": 1.0, "AU06": 0.0,
                        "AU12": pytest.approx(0.6667), "AU15": 0.0, "AU25": 0.0}  # fmt: skip
    assert au["macro_f1"] == pytest.approx((3 + 2 / 3) / 7, abs=1e-4)

    smile = m["au12_smiles"]
    assert smile["n"] == 1 and smile["rises_at_every_smile"]
    row = smile["rows"][0]
    assert (row["au12_apex"], row["au12_baseline"], row["rise"]) == (0.9, 0.1, 0.8)
    assert row["baseline_from"] == "rest_frames" and row["baseline_frames"] == 10

    e = m["emotion"]  # a#0 positive ok; a#2 null -> none; b#0 negative ok; b#1 'none'
    assert [r["predicted"] for r in e["rows"]] == ["positive", "none", "negative", "none"]
    assert (e["n"], e["correct"], e["accuracy"], e["predicted_none"]) == (4, 2, 0.5, 2)
    assert e["classes"] == ["positive", "negative", "surprise", "none"]
    assert e["confusion"] == [[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 1]]
    assert e["uar"] == 0.5  # recalls 1, 1/2, 0
    assert (e["high_medium"]["n"], e["high_medium"]["correct"]) == (3, 1)
    assert e["rows"][0]["interval"] == 0  # 20 overlapping frames beat 19

    ne = m["non_expression"]
    assert ne["n_events"] == 1 and ne["with_emotional_interval"] == 1
    err = ne["errors"][0]
    assert err["emotional_intervals"] == [{"interval": 2, "kind": "micro", "emotion": "negative"}]
    assert err["other_intervals"] == [{"interval": 4, "kind": "speech"}]
    other = ne["other_kind_intervals"]
    assert other["n"] == 1 and other["by_kind"] == {"speech": 1}
    assert other["rows"][0]["overlaps"] == [{"event": 1, "kind": "speech"}]


def test_micro_apex_error(tmp_path) -> None:
    """At 30 fps: micro events are <= 15 frames onset to offset (0.5 s)."""
    entry = clip_entry(130, [
        event(10, 12, 20, (12, 12)),  # 10 frames, 0.33 s: micro
        event(25, 27, 35, (27, 27), kind="speech"),  # not an expression: no row
        event(40, 45, 55, (45, 45)),  # 15 frames = 0.5 s: micro (boundary)
        event(70, 75, 86, (75, 75)),  # 16 frames, 0.53 s: macro
        event(100, 103, 108, (103, 103)),  # micro, left unmatched
    ]) | {"fps": 30.0}  # fmt: skip
    (clip,) = load_labels(write_labels(tmp_path / "micro.json", {"m.mp4": entry}))
    res = result(130, [
        interval(10, 15, 20, "micro"),  # IoU 1; apex 3 off over 11 frames: 0.2727
        interval(41, 45, 55, "micro"),  # IoU 15/16; apex exact: 0
        interval(70, 80, 86),  # the macro event, apex 5 off: not in the micro error
        interval(100, 103, 103, "micro"),  # IoU 4/9 < 0.5: no match, no error
    ], {})  # fmt: skip
    rows = score_clip(clip, res).apex_rows
    assert [(r["event"], r["micro"], r["interval"], r["error_frames"]) for r in rows] == [
        (0, True, 0, 3), (2, True, 1, 0), (3, False, 2, 5), (4, True, None, None)]  # fmt: skip
    assert rows[0]["error_rel"] == pytest.approx(3 / 11, abs=1e-4)
    assert rows[2]["error_rel"] == pytest.approx(5 / 17, abs=1e-4)
    m = micro_apex_error(rows)
    assert (m["n_events"], m["n_matched"]) == (3, 2)
    assert m["mae_rel"] == pytest.approx((3 / 11 + 0) / 2, abs=1e-4)
    assert m["median_rel"] == m["mae_rel"] and m["mae_frames"] == 1.5
    assert [r["event"] for r in m["rows"]] == [0, 2]
    pooled = pool([score_clip(clip, res)])
    assert pooled["apex"]["micro"]["mae_rel"] == m["mae_rel"]
    assert pooled["apex"]["n_matched"] == 3  # the existing apex figures are unchanged
    assert any("micro apex error" in x and "13.6 %" in x for x in summary_lines(pooled))
    none = micro_apex_error([r for r in rows if r["event"] == 4])
    assert none["n_matched"] == 0 and none["mae_rel"] is None


def test_smile_without_au12_rise_and_baseline_outside_events(clips, results) -> None:
    res = result(100, [], {30: {"AU12": 0.55}}, au12_rest=0.4)  # rise 0.15 < 0.25
    row = pool([score_clip(clips[0], res)])["au12_smiles"]
    assert not row["rises_at_every_smile"] and row["rows"][0]["rise"] == pytest.approx(0.15)
    assert au12_baseline_frames(clips[1]) == list(range(10, 20))


def test_failed_clip_counts_as_missed(clips) -> None:
    s = score_clip(clips[0], None, "no_face_detected: no face")
    m = pool([s])
    assert (m["spotting"]["tp"], m["spotting"]["fn"], m["spotting"]["fp"]) == (0, 2, 0)
    assert [r["predicted"] for r in m["emotion"]["rows"]] == ["none", "none"]
    assert m["au"]["f1"]["AU12"] == 0.0
    assert s.error == "no_face_detected: no face"


def test_evaluate_real_with_another_analyze(tmp_path, clips, results) -> None:
    for name in results:  # the clips only need to exist; analyze is ours
        (tmp_path / name).write_bytes(b"x")

    def analyze(path: Path) -> AnalysisResult:
        if path.name == "b.mp4":
            raise NoFaceDetectedError("no face in b")
        return results[path.name]

    seen: list[tuple[int, int, str]] = []
    rep = evaluate_real([clips[0].label_file], [], tmp_path / "out", analyze=analyze,
                        progress=lambda *a: seen.append(a))  # fmt: skip
    assert seen == [(0, 2, "a.mp4"), (1, 2, "b.mp4"), (2, 2, "")]
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["failed"] == ["b.mp4"]
    assert data["spotting"]["tp"] == 2 and data["spotting"]["fn"] == 2
    assert data["clips"][1]["error"].startswith("no_face_detected")
    assert (tmp_path / "out" / "a.mp4.png").stat().st_size > 10_000
    assert "**F1 0.50**" in (tmp_path / "out" / "report.md").read_text()  # TP 2, FP 2, FN 2
    assert rep.metrics["spotting"]["f1"] == 0.5


def test_neutral_from_labels_gives_each_clip_its_labelled_rest(tmp_path, clips, results) -> None:
    from mer.aus.reference import NeutralSpan

    for name in results:
        (tmp_path / name).write_bytes(b"x")
    calls: dict[str, NeutralSpan | None] = {}

    def analyze(path: Path, neutral: NeutralSpan | None = None) -> AnalysisResult:
        calls[path.name] = neutral
        return results[path.name]

    rep = evaluate_real([clips[0].label_file], [], tmp_path / "out", analyze=analyze,
                        plots=False, neutral_from_labels=True)  # fmt: skip
    assert calls == {"a.mp4": NeutralSpan(0, 9, "frame"), "b.mp4": None}  # b has no rest
    assert rep.to_json()["neutral_from_labels"] is True
    assert "rest_frames" in (tmp_path / "out" / "report.md").read_text()
    evaluate_real([clips[0].label_file], [], None, analyze=analyze)
    assert calls == {"a.mp4": None, "b.mp4": None}  # the default: estimated everywhere


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("not json", "not valid JSON"),
        ("[]", "expected a non-empty object"),
        (json.dumps({"c.mp4": clip_entry(30, [event(0, 12, 9, (0, 9))])}), "events.0"),
        (json.dumps({"c.mp4": clip_entry(30, [event(0, 5, 9, (0, 9), ["AU99"])])}), "AU99"),
        (json.dumps({"c.mp4": clip_entry(30, [event(0, 5, 9, (6, 3))])}), "apex_range"),
        (
            json.dumps({"c.mp4": clip_entry(30, [event(0, 5, 9, (0, 9), kind="smile")])}),
            "events.0.kind",
        ),
        (json.dumps({"c.mp4": clip_entry(30, [event(0, 5, 40, (0, 9))])}), "inside 0..29"),
        (json.dumps({"c.mp4": {"fps": 10}}), "frames"),
    ],
)
def test_bad_label_files(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(LabelFileError) as exc:
        load_labels(path)
    assert needle in exc.value.message and str(path) in exc.value.message


def test_label_file_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(LabelFileError, match="cannot read"):
        load_labels(tmp_path / "missing.json")
    entry = {"c.mp4": clip_entry(30, [])}
    one = write_labels(tmp_path / "one.json", entry)
    two = write_labels(tmp_path / "two.json", entry)
    with pytest.raises(LabelFileError, match="'c.mp4' is labelled in both"):
        load_label_files([one, two])
    (clip,) = load_labels(one)
    with pytest.raises(ClipNotFoundError, match="'c.mp4'"):
        find_video(clip, [tmp_path / "elsewhere"])
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "c.mp4").write_bytes(b"x")
    assert find_video(clip, [tmp_path / "elsewhere"]) == tmp_path / "elsewhere" / "c.mp4"


def test_shared_label_files_are_valid(shared_data: Path) -> None:
    dev = load_labels(shared_data / "dev" / "labels.json")
    shared = load_labels(shared_data / "dev" / "labels_shared_videos.json")
    assert len(dev) == 14 and len(shared) == 5
    events = [e for c in dev for e in c.labels.events if e.kind == "expression"]
    assert len(events) == 13


@pytest.mark.media
def test_cli_end_to_end_on_real_clips(shared_data: Path, tmp_path: Path) -> None:
    """single_face.mp4 (72 frames) and CREMA-D HAP (56 frames): the clips are in neither
    the labels' folder, so both --videos folders are searched."""
    dev = json.loads((shared_data / "dev" / "labels.json").read_text())
    vids = json.loads((shared_data / "dev" / "labels_shared_videos.json").read_text())
    labels = write_labels(tmp_path / "subset.json", {
        "single_face.mp4": vids["single_face.mp4"],
        "cremad_1001_DFA_HAP_XX.flv": dev["cremad_1001_DFA_HAP_XX.flv"],
    })  # fmt: skip
    out = tmp_path / "report"
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate-real", str(labels), "--out", str(out), "--videos",
                              str(shared_data / "videos"), "--videos",
                              str(shared_data / "dev")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "spotting" in res.output
    data = json.loads((out / "report.json").read_text())
    assert data["n_clips"] == 2 and data["failed"] == []
    face = data["clips"][0]
    assert face["clip"] == "single_face.mp4" and face["frames"] == 72
    assert face["matched"] == 1 and face["frames_per_s"] > 0  # the smile is spotted
    smile = data["au12_smiles"]["rows"][0]
    assert smile["clip"] == "single_face.mp4" and smile["au12_rises"]
    assert data["spotting"]["n_events"] == 2 and 1 <= data["spotting"]["tp"] <= 2
    assert 0.0 <= data["au"]["macro_f1"] <= 1.0 and "AU12" in data["au"]["scored_aus"]
    assert data["emotion"]["n"] == 2
    assert data["non_expression"]["n_events"] == 1  # HAP's speech
    for c in data["clips"]:
        assert (out / c["plot"]).stat().st_size > 10_000
    assert "single_face.mp4" in (out / "report.md").read_text()

    quiet = runner.invoke(app, ["evaluate-real", str(labels), "--out", str(tmp_path / "q"),
                                "--quiet"])  # fmt: skip
    assert quiet.exit_code == 2 and "clip_not_found" in quiet.output
    assert "single_face.mp4" in quiet.output
