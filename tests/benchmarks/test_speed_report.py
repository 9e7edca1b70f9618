"""benchmarks.report's speed table shows every backend bench_speed timed, beside PyTorch, from its JSON."""
from benchmarks.report import speed_section
from tests.benchmarks.test_report import sections


def _framework(times, rss=1e9):
    return {"baseline_rss_bytes": 4e7, "rows": [{"size": s, "input": [1, s, s, 3], "wall_s": t, "mpix_per_s": 1.0,
                                                 "peak_rss_bytes": rss} for s, t in times.items()]}


def _payload():
    srresnet = {"key": "srresnet", "label": "SRResNet x4", "tf": _framework({128: 0.25, 256: 1.0}),
                "openvino": _framework({128: 0.2, 256: 0.8}, 0.5e9), "onnxruntime": _framework({128: 0.3, 256: 1.1}),
                "torch": _framework({128: 0.4, 256: 1.6}, 0.9e9)}
    only_openvino = {"key": "rrdb", "label": "RRDB x4", "openvino": _framework({128: 1.5}),
                     "torch": _framework({128: 2.0}), "fp32_floor": {"128": {"gflop": 587.0, "floor_s": 1.77,
                                                                              "over_floor": 0.85}}}
    env = {"date": "2026-12-02", "cpu": "Test CPU", "cores": 2, "cpu_flags": ["avx2"], "load_average": [0.1],
           "python": "3.11", "tensorflow": "2.21", "keras": "3", "numpy": "2", "torch": "2.13",
           "backends": {"tensorflow": "2.21", "openvino": "2026.4", "onnxruntime": "1.32"}}
    return {"environment": env, "skipped": [],
            "settings": {"runs": 3, "in_process": False, "default_backend": "openvino", "fp32_peak_how": "2 cores"},
            "results": [srresnet, only_openvino]}


def test_speed_table_has_a_column_per_backend_and_the_ratios():
    text = "\n".join(speed_section(_payload()))
    rows = sections(text)["Speed (forward pass, batch 1)"]
    assert rows[0] == ["Generator", "LR input", "TensorFlow s", "OpenVINO (default) s", "ONNX Runtime s", "PyTorch s",
                       "TensorFlow / PyTorch", "OpenVINO (default) / PyTorch", "ONNX Runtime / PyTorch",
                       "peak RSS GB (TensorFlow / OpenVINO (default) / ONNX Runtime / PyTorch)"]
    assert rows[1] == ["SRResNet x4", "128x128", "0.250", "0.200", "0.300", "0.400", "0.62", "0.50", "0.75",
                       "1.00 / 0.50 / 1.00 / 0.90"]
    assert rows[2][:6] == ["SRResNet x4", "256x256", "1.000", "0.800", "1.100", "1.600"]
    # a generator timed on OpenVINO only still gets its row, the other backends' cells empty
    assert rows[3] == ["RRDB x4", "128x128", "-", "1.500", "-", "2.000", "-", "0.75", "-", "- / 1.00 / - / 1.00"]
    assert len(rows) == 4
    assert "default (`--backend auto`): openvino" in text and "OpenVINO 2026.4" in text
    assert "RRDB x4 128x128: 587 GFLOP, 1.77 s, 0.85x" in text


def test_speed_table_without_pytorch_or_other_backends():
    payload = _payload()
    for entry in payload["results"]:
        for key in ("torch", "openvino", "onnxruntime"):
            entry.pop(key, None)
    payload["settings"]["default_backend"] = "tensorflow"
    rows = sections("\n".join(speed_section(payload)))["Speed (forward pass, batch 1)"]
    assert rows[0] == ["Generator", "LR input", "TensorFlow (default) s", "peak RSS GB (TensorFlow (default))"]
    assert [r[:3] for r in rows[1:]] == [["SRResNet x4", "128x128", "0.250"], ["SRResNet x4", "256x256", "1.000"]]
