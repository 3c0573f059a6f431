"""A spec's data.uri reads only where the deployment allows: relative paths inside RETRAIN_DATA_ROOT,
absolute paths and remote URIs only under RETRAIN_ALLOWED_DATA_URIS. A refused URI is never opened or
fetched, the first task fails at once, and nothing else happens."""

from __future__ import annotations

import datetime as dt
import http.server
import os
import shutil
import threading

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrain.data import list_data_files, read_window
from retrain.errors import DataError
from retrain.settings import resolve_data_uri
from retrain.spec import load_spec
from tests.support import DEMO_DATA, DEMO_SPEC, TASKS, files_under, free_port, registry_snapshot, run_dag, write_spec

pytestmark = pytest.mark.security

RULE = "rule: data.uri must lie inside RETRAIN_DATA_ROOT or under a prefix of RETRAIN_ALLOWED_DATA_URIS"


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data-root"
    shutil.copytree(DEMO_DATA, root / "demo")
    monkeypatch.setenv("RETRAIN_DATA_ROOT", str(root))
    monkeypatch.setenv("RETRAIN_ALLOWED_DATA_URIS", "")
    return root


def test_the_bundled_relative_uri_still_resolves_inside_the_data_root(data_root):
    assert resolve_data_uri("demo/") == str(data_root / "demo")
    assert list_data_files("demo/")


@pytest.mark.parametrize("uri", ["../", "demo/../../", "../../../etc/passwd", "demo/../../data-root-sibling"])
def test_a_relative_uri_cannot_leave_the_data_root(data_root, uri):
    with pytest.raises(DataError, match="outside RETRAIN_DATA_ROOT") as refused:
        list_data_files(uri)
    assert RULE in str(refused.value) and not refused.value.retryable


def test_a_symlink_out_of_the_data_root_is_not_followed(data_root, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(DEMO_DATA, outside)
    os.symlink(outside, data_root / "link")
    with pytest.raises(DataError, match="outside RETRAIN_DATA_ROOT"):
        list_data_files("link/")
    # A file symlinked into an allowed folder from elsewhere is not read either.
    os.symlink(next(outside.glob("*.parquet")), data_root / "demo" / "zz_smuggled.parquet")
    assert not any("zz_smuggled" in f for f in list_data_files("demo/"))


@pytest.mark.parametrize("uri", ["/etc", "/etc/passwd", "file:///etc/", "s3://someone-elses-bucket/x/",
                                 "http://169.254.169.254/latest/meta-data/", "gs://bucket/data/"])  # fmt: skip
def test_absolute_and_remote_uris_need_the_deployments_allow_list(data_root, uri):
    with pytest.raises(DataError, match="RETRAIN_ALLOWED_DATA_URIS") as refused:
        list_data_files(uri)
    assert not refused.value.retryable


def test_an_allowed_absolute_folder_is_read_and_its_neighbours_are_not(data_root, tmp_path, monkeypatch):
    allowed = tmp_path / "shared" / "events"
    shutil.copytree(DEMO_DATA, allowed)
    shutil.copytree(DEMO_DATA, tmp_path / "shared" / "events-private")
    monkeypatch.setenv("RETRAIN_ALLOWED_DATA_URIS", f"{allowed}")
    assert list_data_files(str(allowed))
    for uri in (str(tmp_path / "shared" / "events-private"), f"{allowed}/../events-private", str(tmp_path)):
        with pytest.raises(DataError, match="RETRAIN_ALLOWED_DATA_URIS"):
            list_data_files(uri)


class _Server:
    """A real HTTP server over a folder, counting the requests it receives."""

    def __init__(self, folder):
        self.requests: list[str] = []
        recorder = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def log_message(self, *args):
                recorder.append(self.path)

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_data(tmp_path):
    folder = tmp_path / "www"
    (folder / "data").mkdir(parents=True)
    (folder / "secret").mkdir()
    frame = pd.read_parquet(sorted(DEMO_DATA.glob("*.parquet"))[0])
    frame.to_csv(folder / "data" / "events.csv", index=False)
    frame.head(5).to_csv(folder / "secret" / "events.csv", index=False)
    server = _Server(folder)
    yield f"http://127.0.0.1:{server.port}", server, frame
    server.close()


def test_an_allowed_http_uri_lists_each_file_once_without_a_doubled_scheme(http_data, monkeypatch):
    base, server, frame = http_data
    monkeypatch.setenv("RETRAIN_ALLOWED_DATA_URIS", f"{base}/data/")
    assert list_data_files(f"{base}/data/") == [f"{base}/data/events.csv"]
    assert list_data_files(f"{base}/data/events.csv") == [f"{base}/data/events.csv"]  # was http://http://...
    spec = load_spec(DEMO_SPEC).model_copy(update={"data": load_spec(DEMO_SPEC).data.model_copy(update={"uri": f"{base}/data/"})})
    stamps = pd.to_datetime(frame["event_time"], utc=True)
    end = (stamps.max() + pd.Timedelta(days=1)).date()
    from retrain.window import Window

    window = read_window(spec, Window.ending(dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC), spec.data))
    assert len(window.frame) > 0 and window.files == (f"{base}/data/events.csv",)
    assert not any(path.startswith("/secret") for path in server.requests)


@pytest.mark.parametrize("tail", ["/secret/", "/data/../secret/", "/data/%2e%2e/secret/", "/data/?x=/secret"])
def test_a_refused_http_uri_is_never_fetched(http_data, monkeypatch, tail):
    base, server, _ = http_data
    monkeypatch.setenv("RETRAIN_ALLOWED_DATA_URIS", f"{base}/data/")
    with pytest.raises(DataError, match="RETRAIN_ALLOWED_DATA_URIS"):
        list_data_files(base + tail)
    assert server.requests == []
    with pytest.raises(DataError, match="RETRAIN_ALLOWED_DATA_URIS"):
        list_data_files(base.replace("127.0.0.1", "user:pw@127.0.0.1") + "/data/")


@settings(max_examples=200, deadline=None)
@given(uri=st.lists(st.sampled_from(["..", ".", "demo", "x", "", "~", "%2e", "\\", "..."]), min_size=1, max_size=6).map("/".join))
def test_any_relative_uri_resolves_inside_the_root_or_is_refused(tmp_path_factory, uri):
    root = tmp_path_factory.getbasetemp() / "fuzz-root"
    root.mkdir(exist_ok=True)
    os.environ["RETRAIN_DATA_ROOT"] = str(root)
    try:
        resolved = resolve_data_uri(uri)
    except DataError as refused:
        assert "RETRAIN_DATA_ROOT" in str(refused) or "RETRAIN_ALLOWED_DATA_URIS" in str(refused)
    else:
        assert resolved == str(root) or resolved.startswith(str(root) + os.sep)
    finally:
        os.environ.pop("RETRAIN_DATA_ROOT", None)


@pytest.mark.integration
def test_a_run_whose_spec_reads_outside_the_allowed_places_fails_at_validation_and_changes_nothing(
    guarded_model, tmp_path
):
    from tests.support import artifacts

    _, registry = guarded_model
    (tmp_path / "specs").mkdir()
    hostile = write_spec(tmp_path / "specs", name="guarded", **{"data.uri": "/etc/"})
    before, written = registry_snapshot(registry, "guarded"), files_under(artifacts("guarded") / "features")
    states, _ = run_dag(hostile, dt.date(2025, 5, 4))
    assert states == {TASKS[0]: "failed", **dict.fromkeys(TASKS[1:], "upstream_failed")}
    assert registry_snapshot(registry, "guarded") == before
    assert files_under(artifacts("guarded") / "features") == written
