"""`python -m training export-triton`: every config.pbtxt parses with Triton's own ModelConfig schema
and agrees with its ONNX graph; the model file is the manifest's, the label files its labels."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import onnxruntime as ort
import pytest

from contract.manifest import Manifest, sha256_of
from training.__main__ import main
from training.config import REPO_ROOT
from training.triton import TritonOptions, export_model, export_repository, label_filename

MODELS = REPO_ROOT / "models"


@pytest.fixture(scope="module")
def model_config_pb2() -> ModuleType:
    """Triton's ModelConfig protobuf, as shipped in tritonclient (a dev dependency). Loaded by path:
    the `tritonclient.grpc` package around it needs grpcio, which the http extra does not install."""
    tritonclient = pytest.importorskip("tritonclient")
    path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_config(path: Path, model_config_pb2: ModuleType):
    from google.protobuf import text_format

    # Strict: an unknown field or a wrong type is a ParseError, as it is for Triton.
    return text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("triton")
    main(["export-triton", "--models", str(MODELS), "--out", str(out)])
    return out


def test_every_committed_model_is_exported(repository):
    manifests = [Manifest.load(p.parent) for p in MODELS.glob("*/manifest.json")]
    assert sorted(p.name for p in repository.iterdir()) == sorted(m.name for m in manifests)


@pytest.mark.parametrize("name", sorted(p.parent.name for p in MODELS.glob("*/manifest.json")))
def test_each_config_parses_and_matches_its_onnx_graph(repository, model_config_pb2, name):
    manifest = Manifest.load(MODELS / name)
    directory = repository / manifest.name
    config = parse_config(directory / "config.pbtxt", model_config_pb2)
    types = model_config_pb2.DataType

    assert (config.name, config.platform, config.max_batch_size) == (manifest.name, "onnxruntime_onnx", 64)
    assert config.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    [group] = config.instance_group
    assert (group.count, group.kind) == (1, model_config_pb2.ModelInstanceGroup.KIND_AUTO)

    # The one version Triton will load is the manifest's own ONNX file, byte for byte.
    assert [p.name for p in directory.iterdir() if p.is_dir()] == ["1"]
    onnx_path = directory / "1" / "model.onnx"
    assert sha256_of(onnx_path) == manifest.onnx.sha256

    # Dims are the graph's without its batch dim (Triton adds it, as max_batch_size > 0).
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    [graph_input] = session.get_inputs()
    [config_input] = config.input
    assert (config_input.name, config_input.data_type) == (graph_input.name, types.Value("TYPE_FP32"))
    assert graph_input.type == "tensor(float)"
    size = manifest.preprocessing.canvas_size
    assert list(config_input.dims) == graph_input.shape[1:] == [1, size, size]
    graph_outputs = {o.name: o for o in session.get_outputs()}
    assert [o.name for o in config.output] == [h.output for h in manifest.heads]
    for output, head in zip(config.output, manifest.heads, strict=True):
        assert output.data_type == types.Value("TYPE_FP32")
        assert list(output.dims) == graph_outputs[output.name].shape[1:] == [len(head.labels)]
        # One label per line, in index order: Triton's classification then answers labels.
        assert output.label_filename == label_filename(manifest, head)
        lines = (directory / output.label_filename).read_text(encoding="utf-8").splitlines()
        assert lines == head.labels

    # The preprocessing contract travels with the model.
    assert Manifest.load(directory) == manifest


def test_options_reach_the_config(tmp_path, model_config_pb2):
    options = TritonOptions(max_batch_size=8, max_queue_delay_us=500, instance_kind="gpu", instance_count=2)
    directory = export_model(MODELS / "digits", tmp_path, options)
    config = parse_config(directory / "config.pbtxt", model_config_pb2)
    assert (config.max_batch_size, config.dynamic_batching.max_queue_delay_microseconds) == (8, 500)
    [group] = config.instance_group
    assert (group.count, group.kind) == (2, model_config_pb2.ModelInstanceGroup.KIND_GPU)
    with pytest.raises(ValueError, match="instance kind"):
        export_model(MODELS / "digits", tmp_path, TritonOptions(instance_kind="tpu"))


def test_a_re_export_leaves_no_stale_file(tmp_path):
    directory = export_model(MODELS / "digits", tmp_path, TritonOptions())
    (directory / "2").mkdir()
    (directory / "labels_old.txt").write_text("x\n")
    export_model(MODELS / "digits", tmp_path, TritonOptions())
    assert sorted(p.name for p in directory.iterdir()) == ["1", "config.pbtxt", "labels.txt", "manifest.json"]


def test_a_model_file_that_is_not_the_manifests_is_refused(tmp_path):
    source = tmp_path / "models" / "digits"
    source.mkdir(parents=True)
    (source / "manifest.json").write_bytes((MODELS / "digits" / "manifest.json").read_bytes())
    (source / "model.onnx").write_bytes(b"not the model")
    with pytest.raises(ValueError, match="sha256"):
        export_repository(tmp_path / "models", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no model directory"):
        export_repository(tmp_path / "empty", tmp_path / "out")
