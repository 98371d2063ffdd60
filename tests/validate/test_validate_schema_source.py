"""Where the schema comes from: ARGO_SCHEMA, the verified cache, or the pinned, checksummed download.

Downloads go to a real HTTP server on 127.0.0.1 (conftest.SchemaServer); nothing here reaches the
internet. The pinned URL itself is only checked for its shape.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
from pathlib import Path

import pytest

from resilient_templates.errors import ValidationError
from resilient_templates.validate import SchemaUnavailable, load_schema
from resilient_templates.validate.schema import (
    PINNED_COMMIT,
    PINNED_SHA256,
    cache_path,
    pinned_url,
    strict_definitions,
)

PATH_IN_SERVER = f"/argoproj/argo-workflows/{PINNED_COMMIT}/api/jsonschema/schema.json"


def test_the_pin_is_the_shared_reference_copy(schema_file: Path) -> None:
    """PINNED_SHA256 is the checksum of the schema the project is tested against."""
    assert hashlib.sha256(schema_file.read_bytes()).hexdigest() == PINNED_SHA256


def test_the_pinned_url_names_a_full_commit() -> None:
    """The download URL is immutable: a full 40-hex commit, never a branch or tag."""
    assert re.fullmatch(r"[0-9a-f]{40}", PINNED_COMMIT)
    assert pinned_url() == (
        f"https://raw.githubusercontent.com/argoproj/argo-workflows/{PINNED_COMMIT}/api/jsonschema/schema.json"
    )


def test_argo_schema_env_is_used_first(schema_file: Path, tmp_path: Path) -> None:
    """ARGO_SCHEMA wins over cache and download, and is named as the origin."""
    schema = load_schema(env={"ARGO_SCHEMA": str(schema_file), "XDG_CACHE_HOME": str(tmp_path)}, download=False)
    assert schema.origin == f"ARGO_SCHEMA={schema_file}"


def test_an_unreadable_argo_schema_is_an_error_not_a_skip(tmp_path: Path) -> None:
    """A schema the user named explicitly but that is missing stops validation with one line."""
    missing = tmp_path / "nope.json"
    with pytest.raises(ValidationError) as caught:
        load_schema(env={"ARGO_SCHEMA": str(missing)})
    assert not isinstance(caught.value, SchemaUnavailable)
    assert str(caught.value) == f"ARGO_SCHEMA={missing}: cannot read the Argo schema (No such file or directory)"


def test_a_file_that_is_not_argos_schema_is_refused(tmp_path: Path) -> None:
    """Any JSON file is not a schema: the kinds Argo defines must be there."""
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"definitions": {"x": {}}}))
    with pytest.raises(ValidationError, match="not Argo's JSON schema"):
        load_schema(other)


def test_the_corrections_widen_int_or_string_and_quantity_and_close_objects(schema_file: Path) -> None:
    """IntOrString and Quantity accept numbers, objects are closed, and retryPolicy is an enum."""
    defs = strict_definitions(json.loads(schema_file.read_text()))
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {"type": ["string", "integer"]}
    assert defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] == {"type": ["string", "number"]}
    retry = defs["io.argoproj.workflow.v1alpha1.RetryStrategy"]
    assert retry["additionalProperties"] is False
    assert retry["properties"]["retryPolicy"]["enum"] == ["Always", "OnFailure", "OnError", "OnTransientError"]
    assert defs["io.argoproj.workflow.v1alpha1.RetryNodeAntiAffinity"]["additionalProperties"] is False
    assert "additionalProperties" not in defs["io.argoproj.workflow.v1alpha1.Plugin"]  # free-form by design


def test_download_verifies_and_caches_the_pinned_schema(schema_server, schema_file: Path, tmp_path: Path) -> None:
    """Good bytes are fetched from the pinned path, checked and cached for next time."""
    schema_server.body = schema_file.read_bytes()
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    schema = load_schema(env=env, base_url=schema_server.base_url)
    assert schema_server.requests == [PATH_IN_SERVER]
    assert schema.origin == f"{schema_server.base_url}/{PINNED_COMMIT}/api/jsonschema/schema.json (sha256 verified)"
    assert cache_path(env).read_bytes() == schema_file.read_bytes()


def test_a_verified_cache_is_used_without_downloading(schema_server, schema_file: Path, tmp_path: Path) -> None:
    """Once cached, the schema loads with no request at all."""
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    cache_path(env).parent.mkdir(parents=True)
    cache_path(env).write_bytes(schema_file.read_bytes())
    schema = load_schema(env=env, base_url=schema_server.base_url)
    assert schema_server.requests == []
    assert schema.origin.startswith(str(cache_path(env)))


def test_tampered_download_is_refused_and_not_cached(schema_server, schema_file: Path, tmp_path: Path) -> None:
    """Bytes whose sha256 differs from the pin are never used nor stored."""
    schema_server.body = schema_file.read_bytes().replace(b"retryPolicy", b"retryPolicz", 1)
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    with pytest.raises(SchemaUnavailable) as caught:
        load_schema(env=env, base_url=schema_server.base_url)
    digest = hashlib.sha256(schema_server.body).hexdigest()
    assert f"has sha256 {digest}, expected {PINNED_SHA256} (refused)" in str(caught.value)
    assert not cache_path(env).exists()
    assert list(tmp_path.rglob("*.partial")) == []


def test_a_tampered_cache_is_replaced_by_a_verified_download(schema_server, schema_file: Path, tmp_path: Path) -> None:
    """A cache file with the wrong checksum is ignored and overwritten with verified bytes."""
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    cache_path(env).parent.mkdir(parents=True)
    cache_path(env).write_bytes(b'{"definitions": {}}')
    schema_server.body = schema_file.read_bytes()
    load_schema(env=env, base_url=schema_server.base_url)
    assert schema_server.requests == [PATH_IN_SERVER]
    assert hashlib.sha256(cache_path(env).read_bytes()).hexdigest() == PINNED_SHA256


def test_http_errors_are_reported(schema_server, tmp_path: Path) -> None:
    """A 404 from the server becomes a reason, not an exception trace."""
    schema_server.status = 404
    with pytest.raises(SchemaUnavailable, match=r"failed \(HTTP 404\)"):
        load_schema(env={"XDG_CACHE_HOME": str(tmp_path)}, base_url=schema_server.base_url)


def test_unreachable_server_fails_cleanly_with_every_reason(closed_port: int, tmp_path: Path) -> None:
    """Connection refused gives SchemaUnavailable listing why each source failed."""
    base = f"http://127.0.0.1:{closed_port}/argo"
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    with pytest.raises(SchemaUnavailable) as caught:
        load_schema(env=env, base_url=base)
    message = str(caught.value)
    assert message.startswith(f"ARGO_SCHEMA is not set; no cached copy at {cache_path(env)}; download of {base}/")
    assert "Connection refused" in message


def test_a_silent_server_hits_the_short_timeout(tmp_path: Path) -> None:
    """A server that accepts but never answers is abandoned after the timeout, not waited on."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        base = f"http://127.0.0.1:{silent.getsockname()[1]}/argo"
        started = time.monotonic()
        with pytest.raises(SchemaUnavailable, match="timed out"):
            load_schema(env={"XDG_CACHE_HOME": str(tmp_path)}, base_url=base, timeout=0.3)
        assert time.monotonic() - started < 5  # bound on behaviour (the timeout works), not a speed goal


def test_the_base_url_can_come_from_the_environment(schema_server, schema_file: Path, tmp_path: Path) -> None:
    """ARGO_SCHEMA_BASE_URL points the pinned download at a mirror; the checksum still applies."""
    schema_server.body = schema_file.read_bytes()
    env = {"XDG_CACHE_HOME": str(tmp_path), "ARGO_SCHEMA_BASE_URL": schema_server.base_url}
    load_schema(env=env)
    assert schema_server.requests == [PATH_IN_SERVER]


def test_download_can_be_disabled(tmp_path: Path) -> None:
    """download=False never touches the network and says so."""
    with pytest.raises(SchemaUnavailable, match="download disabled"):
        load_schema(env={"XDG_CACHE_HOME": str(tmp_path)}, download=False)


def test_cache_defaults_to_home_dot_cache(tmp_path: Path) -> None:
    """Without XDG_CACHE_HOME the cache lives under ~/.cache/resilient-templates/."""
    path = cache_path({"HOME": str(tmp_path)})
    assert path.parent == tmp_path / ".cache" / "resilient-templates"
