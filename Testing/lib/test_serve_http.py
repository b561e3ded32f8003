"""`refsam3d serve` over real HTTP on loopback: a real server process with a tiny model, the real client, and raw
requests for what a client should never send. The server's answers equal the local engine's; bad input, a missing or
wrong token, oversize uploads and cancels are refused or stopped with one clear line while the server keeps serving;
expired sessions are uploaded again without the caller noticing."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import numpy as np
import pytest
import torch
from engine_fixtures import ct_volume, tiny_model
from server_process import ServerProcess, save_model

from RefSAM3DLib.engine.errors import Cancelled
from RefSAM3DLib.engine.postprocess import PostProcessing
from RefSAM3DLib.engine.predictor import RefSAM3DPredictor
from RefSAM3DLib.engine.prompts import Prompt
from RefSAM3DLib.serving.client import ServerClient
from RefSAM3DLib.serving.errors import ServerError, ServerUnavailable
from RefSAM3DLib.serving.frames import MEDIA_TYPE, frame_prefix
from RefSAM3DLib.serving.volume_codec import encode_slabs, volume_spec

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as the server (--threads 1): identical arithmetic on both sides
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_model(tiny_model(), tmp_path_factory.mktemp("serve") / "tiny.pt")


@pytest.fixture(scope="module")
def server(checkpoint):
    process = ServerProcess(checkpoint, "--no-anatomy-prior", warm_up=True)  # as served: warmed up before listening
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def strict_server(checkpoint, tmp_path_factory):
    """A token, a 2 MB upload limit and sessions that expire after 1.2 s idle; -v: access lines are logged."""
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    process = ServerProcess(checkpoint, "--no-anatomy-prior", "--token-file", str(token_file), "--max-upload-mb", "2",
                            "--session-idle-minutes", "0.02", verbose=True)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def local(checkpoint):
    """The engine in this process, loaded from the file the server loads: the same model on both sides."""
    return RefSAM3DPredictor.from_pretrained(checkpoint, device="cpu", anatomy_prior=False, presence_threshold=0.0)


@pytest.fixture(scope="module")
def post(local):
    """Random weights put every probability in a narrow band: a threshold that gives partial masks."""
    result, = local.open(ct_volume()).segment(Prompt(text="liver"), return_probability=True)
    return PostProcessing(threshold=float(np.quantile(result.probability, 0.6)), min_size_ml=0.0)


def ask(post) -> dict:
    return {"postprocessing": post, "presence_threshold": 0.0}


def request(url: str, method: str, path: str, body: bytes | None = None, content_type: str = MEDIA_TYPE,
            token: str | None = None, headers: dict | None = None) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    sent = {"Content-Type": content_type, **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, {"raw": data}


def upload_body(array: np.ndarray, affine=None, spec: dict | None = None) -> bytes:
    spec = spec or volume_spec(array)
    affine = np.diag([2.0, 2.0, 2.0, 1.0]).tolist() if affine is None else affine
    return frame_prefix({"volume": spec, "affine": affine, "modality": None}) + b"".join(encode_slabs(array, spec))


def assert_one_line_problem(status: int, body: dict, expected_status: int, words: str) -> None:
    assert status == expected_status, body
    assert set(body) == {"code", "detail"} and "\n" not in body["detail"] and words in body["detail"].lower(), body


def inside(volume, fraction=(0.5, 0.5, 0.5)) -> tuple[float, float, float]:
    ijk = [[(n - 1) * f for n, f in zip(volume.array.shape, fraction)]]
    return tuple(float(c) for c in volume.geometry.ijk_to_ras(ijk)[0])


def test_text_click_and_box_equal_the_local_engine(server, local, post):
    volume = ct_volume()
    client = ServerClient(server.url)
    remote = client.open(volume)
    session = local.open(volume)
    text, = remote.segment(Prompt(text="liver"), **ask(post))
    expected, = session.segment(Prompt(text="liver"), **ask(post))
    assert text.mask.shape == volume.array.shape and text.mask.dtype == bool and text.mask.any()
    np.testing.assert_array_equal(text.mask, expected.mask)
    assert (text.name, text.found, text.terminology, text.color) == (expected.name, expected.found,
                                                                      expected.terminology, tuple(expected.color))
    assert text.volume_ml == pytest.approx(expected.volume_ml) and text.presence == pytest.approx(expected.presence)
    assert {"total_s", "server_s", "round_trip_s", "transport_s"} <= set(text.timings)
    # a click refines from the server's own probability map (the handle), exactly as Prompt(previous=result) locally
    click = Prompt(points=[inside(volume, (0.35, 0.5, 0.5))], point_labels=[False], previous=text)
    refined, = remote.segment(click, **ask(post))
    expected_refined, = session.segment(Prompt(points=click.points, point_labels=[False], previous=expected),
                                        **ask(post))
    np.testing.assert_array_equal(refined.mask, expected_refined.mask)
    box = Prompt(box=(inside(volume, (0.2, 0.2, 0.2)), inside(volume, (0.7, 0.7, 0.7))))
    boxed, = remote.segment(box, **ask(post))
    np.testing.assert_array_equal(boxed.mask, session.segment(box, **ask(post))[0].mask)
    # several structures in one request, as the CLI and the panel send them
    both = remote.segment([Prompt(text="spleen"), Prompt(text="left kidney")], **ask(post))
    assert [r.name for r in both] == ["spleen", "left kidney"]
    remote.close()


def test_refinement_from_a_forgotten_result_starts_from_its_mask(server, local, post):
    volume = ct_volume(seed=3)
    client = ServerClient(server.url)
    remote = client.open(volume)
    first, = remote.segment(Prompt(text="liver"), **ask(post))
    first.refinement_id = "not-a-handle-the-server-knows"
    click = Prompt(points=[inside(volume)], previous=first)
    refined, = remote.segment(click, **ask(post))
    session = local.open(volume)
    expected, = session.segment(Prompt(points=click.points, previous=first.mask), **ask(post))
    np.testing.assert_array_equal(refined.mask, expected.mask)


def test_no_token_or_a_wrong_token_is_refused_and_nothing_is_computed(strict_server):
    url = strict_server.url
    body = upload_body(ct_volume(shape=(12, 10, 8)).array)
    for token, words in ((None, "needs a token"), ("wrong-token-0123456789", "does not match")):
        status, answer = request(url, "POST", "/v1/sessions", body, token=token)
        assert_one_line_problem(status, answer, 401, words)
        status, answer = request(url, "GET", "/v1/info", token=token)
        assert status == 401
    status, info = request(url, "GET", "/v1/info", token=TOKEN)
    assert status == 200 and info["sessions"] == 0 and info["stats"]["uploads"] == 0
    assert info["stats"]["prompts"] == 0 and info["stats"]["unauthorised"] == 4
    with pytest.raises(ServerError, match="refused the token"):
        ServerClient(url, "wrong-token-0123456789").open(ct_volume(shape=(12, 10, 8)))
    assert request(url, "GET", "/healthz")[0] == 200  # for load balancers, says nothing else
    remote = ServerClient(url, TOKEN).open(ct_volume(shape=(12, 10, 8)))
    assert remote.segment(Prompt(text="liver"))[0].mask.shape == (12, 10, 8)
    assert TOKEN not in strict_server.log and "POST /v1/sessions" in strict_server.log  # logged, but not the token


def test_bad_requests_get_one_clear_line_and_the_server_keeps_serving(server):
    url = server.url
    array = ct_volume(shape=(12, 10, 8)).array
    nan = array.astype(np.float32)
    nan[3, 4, 5] = np.nan
    spec = volume_spec(array)
    cases = [
        (request(url, "POST", "/v1/sessions", b"hello", content_type="text/plain"), 415, "send the body as"),
        (request(url, "POST", "/v1/sessions", b"not a frame at all"), 400, "not a refsam3d frame"),
        (request(url, "POST", "/v1/sessions", b"RS3D\x01\x00\x00\x00\x05{oops"), 400, "not valid json"),
        (request(url, "POST", "/v1/sessions", upload_body(array.reshape(12, 80, 1)[:, :, 0:1].reshape(12, 80, 1),
                                                           spec={**spec, "shape": [12, 80]})), 422, "three positive"),
        (request(url, "POST", "/v1/sessions", upload_body(array, spec={**spec, "shape": [12, 10, 9]})), 400,
         "does not match the declared shape"),
        (request(url, "POST", "/v1/sessions", upload_body(array)[:-40]), 400, "cut short"),
        (request(url, "POST", "/v1/sessions", upload_body(nan)), 422, "nan"),
        (request(url, "POST", "/v1/sessions", upload_body(array, affine=np.zeros((4, 4)).tolist())), 422, "affine"),
        (request(url, "POST", "/v1/sessions/nosuchsession/segment",
                 frame_prefix({"request": "abcdefgh1234", "prompts": [{"text": "liver"}]})), 404, "upload the volume"),
        (request(url, "GET", "/v1/nothing-here"), 404, "no such endpoint"),
    ]
    for (status, body), expected, words in cases:
        assert_one_line_problem(status, body, expected, words)
    status, created = request(url, "POST", "/v1/sessions", upload_body(array))
    assert status == 201
    path = f"/v1/sessions/{created['session']}/segment"
    prompts = [
        ({"request": "abcdefgh0001", "prompts": "liver"}, 422, "list of 1 to"),
        ({"request": "short", "prompts": [{"text": "liver"}]}, 400, "letters, digits"),
        ({"request": "abcdefgh0002", "prompts": [{"points": [[1e9, 0, 0]]}]}, 422, "outside"),
        ({"request": "abcdefgh0003", "prompts": [{"points": [[500.0, 500.0, 500.0]]}]}, 422, "outside the volume"),
        ({"request": "abcdefgh0004", "prompts": [{"text": ""}]}, 422, "empty text"),
        ({"request": "abcdefgh0005", "prompts": [{"text": "liver", "previous": {"result": "gone"}}]}, 409,
         "no longer on the server"),
        ({"request": "abcdefgh0006", "prompts": [{"text": "liver"}], "options": {"presence_threshold": 7}}, 422,
         "outside"),
    ]
    for header, expected, words in prompts:
        status, body = request(url, "POST", path, frame_prefix(header))
        assert_one_line_problem(status, body, expected, words)
    status, body = request(url, "POST", path, frame_prefix({"request": "abcdefgh0007", "prompts": [
        {"points": [[0.0, 0.0, 0.0]], "labels": [True]}]}).replace(b"0.0,0.0,0.0", b"NaN,0.0,0.0"))
    assert_one_line_problem(status, body, 422, "finite")
    remote = ServerClient(url).open(ct_volume(shape=(12, 10, 8)))  # still serving
    assert remote.segment(Prompt(text="liver"))[0].mask.shape == (12, 10, 8)


def test_an_oversize_upload_is_refused_before_its_voxels_are_read(strict_server):
    url = strict_server.url
    big = np.zeros((160, 160, 60), np.int16)  # 3 MB > the 2 MB limit
    head = frame_prefix({"volume": volume_spec(big), "affine": np.eye(4).tolist()})
    status, body = request(url, "POST", "/v1/sessions", head + b"\0" * 64, token=TOKEN)
    assert_one_line_problem(status, body, 413, "at most 2 mb")
    status, body = request(url, "POST", "/v1/sessions", head, token=TOKEN, headers={"Content-Length": str(3 * 10**9)})
    assert status == 413
    with pytest.raises(ServerError, match="accepts at most 2 MB") as refused:  # the client checks before sending
        ServerClient(url, TOKEN).open(ct_volume(shape=(160, 160, 60)))
    assert refused.value.status == 413
    assert ServerClient(url, TOKEN).info(refresh=True)["sessions"] >= 0  # and the server still answers


def test_two_clients_at_once_keep_their_own_sessions(server, post):
    volumes = [ct_volume(shape=(40, 36, 30), seed=1), ct_volume(shape=(36, 40, 28), seed=2)]
    remotes = [ServerClient(server.url).open(v) for v in volumes]
    expected = [r.segment(Prompt(text="liver"), **ask(post))[0].mask for r in remotes]
    failures = []

    def work(index: int) -> None:
        try:
            for _ in range(4):
                result, = remotes[index].segment(Prompt(text="liver"), **ask(post))
                assert result.session_token == remotes[index].id
                np.testing.assert_array_equal(result.mask, expected[index])
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert remotes[0].id != remotes[1].id


def test_cancel_reaches_the_server(server):
    client = ServerClient(server.url)
    remote = client.open(ct_volume(shape=(240, 220, 180), spacing=(2.0, 2.0, 2.0)))  # ~150 windows: seconds
    stop = threading.Event()
    seen = []

    def progress(fraction, message):
        seen.append(message)
        if message.startswith("server:"):
            stop.set()  # the user presses Cancel once the server reports work

    cancelled_before = client.info(refresh=True)["stats"]["cancelled"]
    with pytest.raises(Cancelled):
        remote.segment(Prompt(text="liver"), progress=progress, cancel=stop)
    deadline = time.monotonic() + 30
    while client.info(refresh=True)["stats"]["cancelled"] == cancelled_before:
        assert time.monotonic() < deadline, "the server never saw the cancel"
        time.sleep(0.1)
    assert any(m.startswith("server:") for m in seen)
    small = client.open(ct_volume(shape=(12, 10, 8)))
    assert small.segment(Prompt(text="liver"))[0].mask.shape == (12, 10, 8)


def test_an_expired_session_is_uploaded_again_without_the_caller_noticing(strict_server, post):
    client = ServerClient(strict_server.url, TOKEN)
    volume = ct_volume(shape=(20, 18, 16))
    remote = client.open(volume)
    first, = remote.segment(Prompt(text="liver"), **ask(post))
    old = remote.id
    deadline = time.monotonic() + 30
    while client.info(refresh=True)["sessions"]:
        assert time.monotonic() < deadline, "the idle session never expired"
        time.sleep(0.2)
    status, body = request(strict_server.url, "POST", f"/v1/sessions/{old}/segment",
                           frame_prefix({"request": "abcdefgh0008", "prompts": [{"text": "liver"}]}), token=TOKEN)
    assert_one_line_problem(status, body, 404, "expired after")
    refined, = remote.segment(Prompt(points=[inside(volume)], previous=first), **ask(post))
    assert remote.uploads == 2 and remote.id != old and refined.mask.shape == volume.array.shape


def test_an_unreachable_server_is_one_line():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ServerUnavailable, match="cannot reach the RefSAM3D server.*connection refused") as error:
        ServerClient(f"http://127.0.0.1:{port}").info()
    assert "\n" not in str(error.value)
    with pytest.raises(ServerError, match="must not hold a user name or token"):
        ServerClient(f"http://user:secret@127.0.0.1:{port}")


@pytest.mark.parametrize("argv, words", [
    (["serve", "--host", "0.0.0.0"], "lets other machines connect: give --token-file"),
    (["serve", "--token-file", "{missing}"], "does not exist"),
    (["serve", "--token-file", "{short}"], "shorter than 16 characters"),
    (["serve", "--port", "70000"], "must be between 0 and 65535"),
    (["serve", "--max-upload-mb", "0"], "must be at least 1"),
])
def test_serve_refuses_unsafe_or_impossible_settings_in_one_line(argv, words, tmp_path, capsys):
    from RefSAM3DLib.cli import main

    short = tmp_path / "short"
    short.write_text("abc\n")
    argv = [a.format(missing=tmp_path / "missing", short=short) for a in argv]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert words in error and error.count("\n") == 1 and "abc" not in error
