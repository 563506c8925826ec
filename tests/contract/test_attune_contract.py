"""Contract: the test Attune server and the collection's API client against Attune's own client, attune-sdk.

attune-sdk (PyPI) is generated from Attune's OpenAPI; tests/requirements.txt pins its newest release (0.5.4, from
Attune 0.6.3; the pack and auth routes and models are those of 0.5.2, built from v0.6.0), and
test_the_sdk_is_the_pinned_release fails when another release is installed.
Every answer of tests/support/attune_server.py is parsed with the SDK's generated models (so the simulator
cannot drift from Attune's published shapes), and every request plugins/module_utils/_attune/_api.py sends is compared
with the request the SDK builds for the same call (method, path, query, JSON body, multipart fields).

Run with an interpreter that has attune-sdk (Python >= 3.10), e.g.:
    /work/venv-api/bin/python -m pytest -q -n 0 tests/contract
"""
import io
import json
import os
import tarfile
import gzip

import pytest

sdk = pytest.importorskip("attune.api_client", reason="attune-sdk is not installed (pip install -r tests/requirements.txt)")
httpx = pytest.importorskip("httpx", reason="httpx (a dependency of attune-sdk) is not installed")

from attune.api_client import AuthenticatedClient, Client  # noqa: E402
from attune.api_client.api.auth import login, refresh_token, token_login  # noqa: E402
from attune.api_client.api.packs import (  # noqa: E402
    browse_indexed_packs, create_pack_index, delete_pack, delete_pack_index, get_indexed_pack, get_pack, get_pack_install,
    get_pack_latest_install, install_pack, list_pack_indices, list_packs, update_pack_index, upload_pack)
from attune.api_client.models import (  # noqa: E402
    ApiResponsePackInstallResponse, ApiResponsePackInstallStatusResponse, AuthErrorResponse, BrowseIndexedPacksResponse200, CreatePackIndexResponse201,
    CreatePackRegistryIndexRequest, CreatePackRegistryIndexRequestHeaders, ErrorResponse, GetIndexedPackResponse200,
    GetPackResponse200, InstallPackRequest, ListPackIndicesResponse200, LoginRequest, LoginResponse200,
    PackTestResult, PackUploadForm, PaginatedResponsePackSummary, RefreshTokenRequest, RefreshTokenResponse200,
    SuccessResponse, TokenLoginRequest, TokenLoginResponse200, UpdatePackIndexResponse200,
    UpdatePackRegistryIndexRequest, UpdatePackRegistryIndexRequestHeadersType0, UploadPackResponse201)
from attune.api_client.types import File  # noqa: E402

from support.attune_server import AttuneServer, parse_multipart  # noqa: E402
from support.registry_server import RegistryServer  # noqa: E402
from support.synth import make_pack_archive, make_pack_tree  # noqa: E402
from testdata import make_entry, make_index  # noqa: E402

from ansible_collections.attune.packs.plugins.module_utils._attune import _api, _api_errors  # noqa: E402
from ansible_collections.attune.packs.plugins.module_utils._pack import _archive  # noqa: E402


# ---------------------------------------------------------------------------
# helpers


def tar_gz(entries):
    """entries: [(name, kind, data)] kind in file/dir/symlink/hardlink/fifo/chr."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = data
            tar.addfile(info)
    return gzip.compress(raw.getvalue())


def pack_yaml(ref="demo", version="1.0.0", **extra):
    doc = {"ref": ref, "name": ref.title(), "version": version, "description": "demo pack"}
    doc.update(extra)
    import yaml
    return yaml.safe_dump(doc).encode()


def archive(ref="demo", version="1.0.0", top=None, **extra):
    prefix = (top + "/") if top else ""
    entries = [(prefix + "pack.yaml", "file", pack_yaml(ref, version, **extra)), (prefix + "README.md", "file", b"hi\n")]
    if top:
        entries.insert(0, (top, "dir", None))
    return tar_gz(entries)


def sdk_client(api, token=None):
    if token is None:
        return Client(base_url=api.url(), verify_ssl=api.ca_path)
    # undocumented statuses (e.g. 409 on install) are parsed explicitly with ErrorResponse / AuthErrorResponse
    return AuthenticatedClient(base_url=api.url(), token=token, verify_ssl=api.ca_path)


def access_token(api, login_name="ci", **kw):
    token = api.add_integration_token(login_name, **kw)
    res = token_login.sync_detailed(client=sdk_client(api), body=TokenLoginRequest(token=token))
    assert res.status_code == 200 and isinstance(res.parsed, TokenLoginResponse200)
    return res.parsed.data.access_token


def upload(client, data, force=None, skip_tests=None, name="pack.tar.gz"):
    form = PackUploadForm(pack=File(payload=io.BytesIO(data), file_name=name, mime_type="application/gzip"))
    if force is not None:
        form.force = force
    if skip_tests is not None:
        form.skip_tests = skip_tests
    return upload_pack.sync_detailed(client=client, body=form)


def error_of(res):
    """Parse an error body with the SDK's ErrorResponse (every non-auth error of Attune has this shape)."""
    return ErrorResponse.from_dict(json.loads(res.content))


def auth_error_of(res):
    return AuthErrorResponse.from_dict(json.loads(res.content))


@pytest.fixture()
def api():
    with AttuneServer() as server:
        yield server


@pytest.fixture()
def registry():
    with RegistryServer() as reg:
        yield reg


# ---------------------------------------------------------------------------
# auth


def test_auth_token_login_password_login_refresh(api):
    api.add_user("admin", password="changeme123")
    anon = sdk_client(api)
    res = login.sync_detailed(client=anon, body=LoginRequest(login="admin", password="changeme123"))
    assert res.status_code == 200 and isinstance(res.parsed, LoginResponse200)
    data = res.parsed.data
    assert data.token_type == "Bearer" and data.expires_in > 0
    res = login.sync_detailed(client=anon, body=LoginRequest(login="admin", password="wrong"))
    assert res.status_code == 401 and error_of(res).code == "UNAUTHORIZED"
    res = token_login.sync_detailed(client=anon, body=TokenLoginRequest(token="attune_it_nope"))
    assert res.status_code == 401 and error_of(res).error == "Invalid integration token"

    # expired access token → 401 (auth envelope); refresh → a new working pair; the old refresh token is spent
    authed = sdk_client(api, data.access_token)
    assert list_packs.sync_detailed(client=authed).status_code == 200
    api.expire_access_tokens()
    res = list_packs.sync_detailed(client=authed)
    assert res.status_code == 401 and auth_error_of(res).error.code == 401
    res = refresh_token.sync_detailed(client=anon, body=RefreshTokenRequest(refresh_token=data.refresh_token))
    assert res.status_code == 200 and isinstance(res.parsed, RefreshTokenResponse200)
    assert list_packs.sync_detailed(client=sdk_client(api, res.parsed.data.access_token)).status_code == 200
    res = refresh_token.sync_detailed(client=anon, body=RefreshTokenRequest(refresh_token=data.refresh_token))
    assert res.status_code == 401
    # a refresh token is not a bearer token for API routes
    res = list_packs.sync_detailed(client=sdk_client(api, data.refresh_token))
    assert res.status_code == 401 and auth_error_of(res).error.code == 401


def test_only_access_tokens_on_pack_routes(api):
    api.add_user("worker")
    execution = api.issue_token("worker", "execution")
    client = sdk_client(api, execution)
    assert list_packs.sync_detailed(client=client).status_code == 200  # reads are allowed to execution tokens
    res = upload(client, archive())
    assert res.status_code == 403 and error_of(res).error == "This pack operation requires an access token"
    res = install_pack.sync_detailed(client=client, body=InstallPackRequest(source="demo"))
    assert res.status_code == 403 and isinstance(res.parsed, ErrorResponse)
    res = list_pack_indices.sync_detailed(client=client)
    assert res.status_code == 403 and isinstance(res.parsed, ErrorResponse)


def test_rbac_install_and_configure(api):
    reader = sdk_client(api, access_token(api, "reader", grants=("read",)))
    res = upload(reader, archive())
    assert res.status_code == 403 and "Packs:Install" in error_of(res).error
    installer = sdk_client(api, access_token(api, "installer", grants=("read", "install")))
    assert upload(installer, archive()).status_code == 201
    res = upload(installer, archive(version="1.1.0"), force="true")
    assert res.status_code == 403 and error_of(res).error == "Not authorized to replace pack"
    assert api.pack("demo")["version"] == "1.0.0"
    scoped = sdk_client(api, access_token(api, "scoped", unconstrained=False))
    res = list_pack_indices.sync_detailed(client=scoped)
    assert res.status_code == 403 and "unconstrained Packs Read grant" in res.parsed.error


# ---------------------------------------------------------------------------
# packs


def test_upload_get_list_delete(api):
    client = sdk_client(api, access_token(api))
    data = archive("demo", "1.0.0", top="demo-1.0.0")  # pack.yaml one directory down is accepted
    res = upload(client, data, skip_tests="false")
    assert res.status_code == 201 and isinstance(res.parsed, UploadPackResponse201), res.content
    assert res.parsed.data.pack.ref == "demo" and res.parsed.data.pack.version == "1.0.0"
    assert res.parsed.message == "Pack uploaded and registered successfully"
    import hashlib
    assert api.pack("demo")["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
    res = upload(client, archive("demo", "1.1.0"))
    assert res.status_code == 409 and error_of(res).code == "CONFLICT" and "force=true" in error_of(res).error
    res = upload(client, archive("demo", "1.1.0"), force="TRUE ")  # "true" in any case, trimmed
    assert res.status_code == 201 and res.parsed.data.pack.version == "1.1.0"
    res = get_pack.sync_detailed(client=client, ref="demo")
    assert res.status_code == 200 and isinstance(res.parsed, GetPackResponse200) and res.parsed.data.version == "1.1.0"
    res = get_pack.sync_detailed(client=client, ref="nope")
    assert res.status_code == 404 and error_of(res).error == "Pack 'nope' not found"
    res = delete_pack.sync_detailed(client=client, ref="demo")
    assert res.status_code == 200 and isinstance(res.parsed, SuccessResponse) and res.parsed.success
    assert delete_pack.sync_detailed(client=client, ref="demo").status_code == 404


def test_list_paging(api):
    client = sdk_client(api, access_token(api))
    for i in range(5):
        api.add_standard_pack("std%d" % i)
    seen = []
    for page in (1, 2, 3):
        res = list_packs.sync_detailed(client=client, page=page, page_size=2)
        assert isinstance(res.parsed, PaginatedResponsePackSummary)
        seen += [p.ref for p in res.parsed.items]
        assert res.parsed.pagination.has_next == (page < 3) and res.parsed.pagination.total_items == 5
    assert seen == ["std0", "std1", "std2", "std3", "std4"]
    assert all(p.is_standard for p in res.parsed.items)
    res = list_packs.sync_detailed(client=client, page_size=1000)
    assert res.parsed.pagination.page_size == 100


@pytest.mark.parametrize("entries, message", [
    ([("pack.yaml", "file", pack_yaml()), ("link", "symlink", "/etc/passwd")], "link entry"),
    ([("pack.yaml", "file", pack_yaml()), ("hard", "hardlink", "pack.yaml")], "link entry"),
    ([("pack.yaml", "file", pack_yaml()), ("dev", "chr", None)], "special entry"),
    ([("pack.yaml", "file", pack_yaml()), ("fifo", "fifo", None)], "special entry"),
    ([("/abs/pack.yaml", "file", pack_yaml())], "absolute or parent"),
    ([("a/../../pack.yaml", "file", pack_yaml())], "absolute or parent"),
    ([("a/b/pack.yaml", "file", pack_yaml())], "Could not find pack.yaml"),
    ([("pack.yaml", "file", pack_yaml(ref="Bad.Ref"))], "Invalid pack ref"),
    ([("pack.yaml", "file", b"ref: demo\nversion: 1.0\n")], "Missing 'version' field"),
    ([("pack.yaml", "file", b"version: '1.0.0'\n")], "Missing 'ref' field"),
    ([("pack.yaml", "file", b"ref: [unclosed\n")], "Failed to parse pack.yaml"),
])
def test_upload_validation(api, entries, message):
    client = sdk_client(api, access_token(api))
    res = upload(client, tar_gz(entries))
    assert res.status_code == 400, res.content
    assert message in error_of(res).error and error_of(res).code == "BAD_REQUEST"
    assert api.packs == {}


def test_upload_not_gzip_and_size_limit():
    with AttuneServer(max_upload_bytes=4096) as api:
        client = sdk_client(api, access_token(api))
        res = upload(client, b"not a tarball")
        assert res.status_code == 400 and "Failed to extract pack archive" in error_of(res).error
        big = tar_gz([("pack.yaml", "file", pack_yaml()), ("blob", "file", os.urandom(8192))])
        res = upload(client, big)
        assert res.status_code == 400 and "exceeds maximum size of 4096 bytes" in error_of(res).error
        body = {"pack": ("p.tar.gz", os.urandom(2 * 1024 * 1024))}
        res = httpx.post(api.url("/api/v1/packs/upload"), files=body, verify=api.ca_path,
                         headers={"Authorization": "Bearer " + access_token(api, "other")})
        assert res.status_code == 413
        assert api.packs == {}


def test_failing_tests_sync_mode():
    """Older Attune (execute_and_store_pack_tests): failing tests → 400 at upload time."""
    with AttuneServer(tests_mode="sync") as api:
        _failing_tests_sync(api)


def _failing_tests_sync(api):
    client = sdk_client(api, access_token(api))
    assert upload(client, archive("demo", "1.0.0")).status_code == 201
    api.set_test_result("demo", passed=3, failed=2)
    res = upload(client, archive("demo", "2.0.0"), force="true")
    assert res.status_code == 201  # force registers despite failing tests
    res = upload(client, archive("other", "1.0.0", testing={"enabled": True}))
    assert res.status_code == 201 and isinstance(res.parsed.data.test_result, PackTestResult)
    assert res.parsed.data.test_result.status == "passed"
    api.set_test_result("other", passed=1, failed=4, skipped=1)
    res = upload(client, archive("other", "1.1.0"), force="true", skip_tests="false")
    assert res.status_code == 201 and res.parsed.data.test_result.failed == 4
    api.set_test_result("third", passed=0, failed=1)
    res = upload(client, archive("third", "1.0.0"))
    assert res.status_code == 400
    err = error_of(res)
    assert err.error == "Pack registration failed: tests did not pass. Use force=true to register anyway."
    result = PackTestResult.from_dict(err.details["test_result"])
    assert (result.failed, result.total_tests) == (1, 1)
    assert api.pack("third") is None
    res = upload(client, archive("third", "1.0.0"), skip_tests="true")
    assert res.status_code == 201 and res.parsed.data.tests_skipped


def test_failing_tests_async_install_tracking(api):
    """Attune v0.6.0: 201 with install_id/pending, then the tracked install ends succeeded or rolled_back."""
    client = sdk_client(api, access_token(api))
    res = upload(client, archive("good", "1.0.0", testing={"enabled": True}))
    assert res.status_code == 201 and res.parsed.data.install_status == "pending"
    good_id = res.parsed.data.install_id
    api.set_test_result("bad", passed=1, failed=3)
    res = upload(client, archive("bad", "1.0.0"))
    assert res.status_code == 201 and res.parsed.data.install_status == "pending"
    bad_id = res.parsed.data.install_id
    assert api.pack("bad") is not None  # registered while the tests run
    states = []
    for _unused in range(2):
        res = get_pack_install.sync_detailed(bad_id, client=client)
        assert isinstance(res.parsed, ApiResponsePackInstallStatusResponse)
        states.append(res.parsed.data.status)
    assert states == ["running", "rolled_back"]
    data = res.parsed.data
    assert data.error_message == "Pack tests failed: 3 of 4 tests failed"
    assert PackTestResult.from_dict(data.test_result).failed == 3
    assert api.pack("bad") is None
    res = get_pack_latest_install.sync_detailed("bad", client=client)
    assert isinstance(res.parsed, ApiResponsePackInstallStatusResponse) and res.parsed.data.install_id == bad_id
    api.settle_installs()
    res = get_pack_install.sync_detailed(good_id, client=client)
    assert res.parsed.data.status == "succeeded" and api.pack("good") is not None
    assert get_pack_install.sync_detailed(999, client=client).status_code == 404
    # installs from a registry wait for the candidate's tests: 400 with Attune's message
    assert api.count("/api/v1/packs/install/%d" % bad_id) == 2


def test_install_from_registry(api, registry, tmp_path):
    path, digest = make_pack_archive(str(tmp_path), "slack", "2.1.0")
    with open(path, "rb") as handle:
        blob = handle.read()
    registry.add_bytes("/slack-2.1.0.tar.gz", blob)
    entry = make_entry("slack", "2.1.0")
    entry["install_sources"][1].update(url=registry.url("slack-2.1.0.tar.gz"), checksum=digest)
    registry.add_json("/index.json", make_index("corp", [entry]), required_headers={"Authorization": "Bearer r"})
    client = sdk_client(api, access_token(api))
    res = create_pack_index.sync_detailed(client=client, body=CreatePackRegistryIndexRequest(
        url=registry.url("index.json"), name="corp",
        headers=CreatePackRegistryIndexRequestHeaders.from_dict({"Authorization": "Bearer r"})))
    assert res.status_code == 201 and isinstance(res.parsed, CreatePackIndexResponse201)
    corp_id = res.parsed.data.id
    res = install_pack.sync_detailed(client=client, body=InstallPackRequest(source="slack@2.1.0", skip_tests=True))
    assert res.status_code == 200 and isinstance(res.parsed, ApiResponsePackInstallResponse), res.content
    prov = res.parsed.data.provenance
    assert prov.checksum == digest and prov.registry_id == corp_id and prov.resolved_pack == "slack@2.1.0"
    assert api.pack("slack")["sha256"] == digest
    res = install_pack.sync_detailed(client=client, body=InstallPackRequest(source="slack"))
    assert res.status_code == 409 and "already exists" in error_of(res).error
    res = install_pack.sync_detailed(client=client, body=InstallPackRequest(source="nothere"))
    assert res.status_code == 404 and isinstance(res.parsed, ErrorResponse)
    res = install_pack.sync_detailed(client=client, body=InstallPackRequest(source="slack", registry_id=999))
    assert res.status_code == 400 and "Enabled managed pack index 999" in res.parsed.error
    # Attune cannot fetch its index → 502
    registry.add_status("/index.json", 503)
    res = install_pack.sync_detailed(client=client, body=InstallPackRequest(source="slack", force=True))
    assert res.status_code == 502 and error_of(res).code == "BAD_GATEWAY" and registry.url("index.json") in error_of(res).error


# ---------------------------------------------------------------------------
# pack indices


def test_pack_indices_rules(registry):
    registry.add_json("/a.json", make_index("a", [make_entry("slack", "1.0.0"), make_entry("aws", "1.0.0")]))
    registry.add_json("/b.json", make_index("b", [make_entry("slack", "2.0.0"), make_entry("github", "1.0.0")]))
    static = [{"url": registry.url("static.json"), "priority": 5, "enabled": True, "name": "from-config"}]
    registry.add_json("/static.json", make_index("static", [make_entry("jira", "1.0.0")]))
    with AttuneServer(static_indices=static) as api:
        client = sdk_client(api, access_token(api))
        res = list_pack_indices.sync_detailed(client=client)
        assert isinstance(res.parsed, ListPackIndicesResponse200)
        assert [(i.position, i.url) for i in res.parsed.data] == [(0, api.standard_index_url)]
        # only the standard row: the config file's indices are in force
        res = browse_indexed_packs.sync_detailed(client=client)
        assert [(p.pack.ref, p.registry.id) for p in res.parsed.data] == [("jira", None)]

        res = create_pack_index.sync_detailed(client=client, body=CreatePackRegistryIndexRequest(
            url=registry.url("b.json"), name="b",
            headers=CreatePackRegistryIndexRequestHeaders.from_dict({"X-Token": "sekret"})))
        b = res.parsed.data
        assert b.position == 1 and b.headers.to_dict() == {"X-Token": "[REDACTED]"}
        res = create_pack_index.sync_detailed(client=client, body=CreatePackRegistryIndexRequest(
            url=registry.url("a.json"), name="a", position=1))
        a = res.parsed.data
        assert "sekret" not in json.dumps(json.loads(list_pack_indices.sync_detailed(client=client).content))
        # equal positions keep creation order; the config file's indices are out of force now
        res = browse_indexed_packs.sync_detailed(client=client)
        assert isinstance(res.parsed, BrowseIndexedPacksResponse200)
        assert [(p.pack.ref, p.pack.version, p.registry.name) for p in res.parsed.data] == [
            ("slack", "2.0.0", "b"), ("github", "1.0.0", "b"), ("aws", "1.0.0", "a")]
        res = update_pack_index.sync_detailed(b.id, client=client, body=UpdatePackRegistryIndexRequest(
            headers=UpdatePackRegistryIndexRequestHeadersType0.from_dict({"X-Token": "[REDACTED]"}), enabled=False))
        assert isinstance(res.parsed, UpdatePackIndexResponse200) and res.parsed.data.enabled is False
        assert api.indices[1]["headers"] == {"X-Token": "sekret"}  # "[REDACTED]" keeps the stored value
        res = browse_indexed_packs.sync_detailed(client=client, q="SLACK")
        assert [(p.pack.version, p.registry.name) for p in res.parsed.data] == [("1.0.0", "a")]
        res = browse_indexed_packs.sync_detailed(client=client, include_disabled=True)
        assert [p.registry.name for p in res.parsed.data][:2] == ["b", "b"]
        res = browse_indexed_packs.sync_detailed(client=client, registry_id=b.id)
        assert res.status_code == 400 and "Enabled managed pack index" in res.parsed.error
        res = get_indexed_pack.sync_detailed(client=client, ref="slack")
        assert isinstance(res.parsed, GetIndexedPackResponse200) and res.parsed.data.registry.id == a.id
        res = get_indexed_pack.sync_detailed(client=client, ref="nope")
        assert res.status_code == 404 and isinstance(res.parsed, ErrorResponse)

        res = delete_pack_index.sync_detailed(b.id, client=client)
        assert res.status_code == 200 and isinstance(res.parsed, SuccessResponse)
        res = delete_pack_index.sync_detailed(a.id, client=client)
        assert res.status_code == 409 and "static pack indices" in res.parsed.error
        res = delete_pack_index.sync_detailed(1, client=client)  # the standard index may always go
        assert res.status_code == 200
        res = create_pack_index.sync_detailed(client=client, body=CreatePackRegistryIndexRequest(url="http://plain.example/i.json"))
        assert res.status_code == 400
        res = create_pack_index.sync_detailed(client=client, body=CreatePackRegistryIndexRequest(
            url="https://x.example/i.json", headers=CreatePackRegistryIndexRequestHeaders.from_dict({"Host": "x"})))
        assert res.status_code == 400 and isinstance(res.parsed, ErrorResponse)


def test_indexed_pack_is_the_first_entry_attune_installs(registry, tmp_path):
    """get_indexed_pack and install use the FIRST entry of the ref (RegistryClient::search_pack), and install accepts
    only ``latest`` or exactly that version (routes/packs.rs resolve_registry_request)."""
    path, digest = make_pack_archive(str(tmp_path), "slack", "1.0.0")
    with open(path, "rb") as handle:
        registry.add_bytes("/slack-1.0.0.tar.gz", handle.read())
    first = make_entry("slack", "1.0.0")
    first["install_sources"][1].update(url=registry.url("slack-1.0.0.tar.gz"), checksum=digest)
    registry.add_json("/hist.json", make_index("hist", [first, make_entry("slack", "2.0.0")]))
    with AttuneServer() as api:
        client = sdk_client(api, access_token(api))
        row = create_pack_index.sync_detailed(client=client, body=CreatePackRegistryIndexRequest(
            url=registry.url("hist.json"), name="hist")).parsed.data
        res = get_indexed_pack.sync_detailed(client=client, ref="slack")
        assert isinstance(res.parsed, GetIndexedPackResponse200)
        assert (res.parsed.data.pack.version, res.parsed.data.registry.id) == ("1.0.0", row.id)
        res = browse_indexed_packs.sync_detailed(client=client, q="slack")
        assert [p.pack.version for p in res.parsed.data] == ["1.0.0"]
        res = install_pack.sync_detailed(client=client, body=InstallPackRequest(source="slack@2.0.0", skip_tests=True))
        assert res.status_code == 400 and isinstance(res.parsed, ErrorResponse)
        assert res.parsed.error == "Pack slack version 2.0.0 not found (available: 1.0.0)"
        res = install_pack.sync_detailed(client=client, body=InstallPackRequest(source="slack@latest", skip_tests=True))
        assert res.status_code == 200 and res.parsed.data.provenance.resolved_pack == "slack@1.0.0", res.content


# ---------------------------------------------------------------------------
# the collection's requests are the SDK's


def sdk_request(api, kwargs):
    """The request httpx builds from an SDK module's _get_kwargs() (what the SDK would send)."""
    with httpx.Client(base_url=api.url()) as client:
        return client.build_request(**kwargs)


def assert_same_request(api, ours, kwargs):
    """``ours``: the ApiRequest the server logged for our client; ``kwargs``: the SDK's ``_get_kwargs(...)``."""
    theirs = sdk_request(api, kwargs)
    assert ours.method == theirs.method
    assert ours.path == theirs.url.path
    from urllib.parse import parse_qs
    assert parse_qs(ours.query) == parse_qs(theirs.url.query.decode())
    body = theirs.read()
    ctype = theirs.headers.get("Content-Type", "")
    if ctype.startswith("application/json"):
        assert ours.json == json.loads(body)
    elif ctype.startswith("multipart/form-data"):
        sdk_parts = parse_multipart(body, ctype)
        ours_parts = ours.multipart
        assert [p[0] for p in ours_parts] == [p[0] for p in sdk_parts]
        for (name, filename, _ct, value), (sname, sfilename, _sct, sdata) in zip(ours_parts, sdk_parts):
            assert (filename is None) == (sfilename is None), name
            if filename is None:
                assert value == sdata.decode(), name
            else:
                import hashlib
                assert value == "sha256:" + hashlib.sha256(sdata).hexdigest()
    else:
        assert not ours.json and not body


def last(api, method, path):
    return [r for r in api.requests if r.method == method and r.path == path][-1]


def test_collection_requests_match_the_sdk(api, registry, tmp_path):
    registry.add_json("/corp.json", make_index("corp", [make_entry("slack", "1.0.0")]))
    token = api.add_integration_token("ci")
    client = _api.AttuneApi(api.url(), token=token, ca_path=api.ca_path)
    client.list_indices()
    assert_same_request(api, last(api, "POST", "/auth/token-login"),
                        token_login._get_kwargs(body=TokenLoginRequest(token=token)))
    assert_same_request(api, last(api, "GET", "/api/v1/pack-indices"), list_pack_indices._get_kwargs())

    tree = make_pack_tree(str(tmp_path / "demo"), "demo", "1.0.0", pack_yaml_extra={"testing": {"enabled": True}})
    blob, _digest = _archive.build_archive(tree)
    data = client.upload_pack(blob, ref="demo", force=True, skip_tests=False)
    form = PackUploadForm(pack=File(payload=io.BytesIO(blob), file_name="demo.tar.gz"), force="true", skip_tests="false")
    assert_same_request(api, last(api, "POST", "/api/v1/packs/upload"), upload_pack._get_kwargs(body=form))
    assert data["install_status"] == "succeeded" and PackTestResult.from_dict(data["test_result"]).passed == 1
    assert_same_request(api, last(api, "GET", "/api/v1/packs/install/%d" % data["install_id"]),
                        get_pack_install._get_kwargs(data["install_id"]))

    client.list_packs()
    assert_same_request(api, last(api, "GET", "/api/v1/packs"), list_packs._get_kwargs(page=1, page_size=100))
    client.get_pack("demo")
    assert_same_request(api, last(api, "GET", "/api/v1/packs/demo"), get_pack._get_kwargs("demo"))

    row = client.create_index(registry.url("corp.json"), name="corp", headers={"Authorization": "Bearer z"})
    assert_same_request(api, last(api, "POST", "/api/v1/pack-indices"), create_pack_index._get_kwargs(
        body=CreatePackRegistryIndexRequest(url=registry.url("corp.json"), name="corp", enabled=True,
                                            headers=CreatePackRegistryIndexRequestHeaders.from_dict({"Authorization": "Bearer z"}))))
    client.update_index(row["id"], position=4, enabled=True)
    assert_same_request(api, last(api, "PUT", "/api/v1/pack-indices/%d" % row["id"]), update_pack_index._get_kwargs(
        row["id"], body=UpdatePackRegistryIndexRequest(headers=None, position=4, enabled=True)))
    client.update_index(row["id"], headers={"Authorization": "Bearer y"}, name="c2")
    assert_same_request(api, last(api, "PUT", "/api/v1/pack-indices/%d" % row["id"]), update_pack_index._get_kwargs(
        row["id"], body=UpdatePackRegistryIndexRequest(
            headers=UpdatePackRegistryIndexRequestHeadersType0.from_dict({"Authorization": "Bearer y"}), name="c2")))
    client.browse("slack", include_disabled=True)
    assert_same_request(api, last(api, "GET", "/api/v1/pack-indices/packs"),
                        browse_indexed_packs._get_kwargs(q="slack", include_disabled=True))
    client.browse(registry_id=row["id"])
    assert_same_request(api, last(api, "GET", "/api/v1/pack-indices/packs"),
                        browse_indexed_packs._get_kwargs(registry_id=row["id"]))
    client.get_indexed_pack("slack")
    assert_same_request(api, last(api, "GET", "/api/v1/pack-indices/packs/slack"), get_indexed_pack._get_kwargs("slack"))
    with pytest.raises(_api_errors.ApiError):
        client.install_pack("slack", ref_spec="1.0.0", registry_id=row["id"], force=True, skip_tests=True, skip_deps=False)
    assert_same_request(api, last(api, "POST", "/api/v1/packs/install"), install_pack._get_kwargs(body=InstallPackRequest(
        source="slack", ref_spec="1.0.0", registry_id=row["id"], force=True, skip_tests=True, skip_deps=False)))
    client.delete_pack("demo")
    assert_same_request(api, last(api, "DELETE", "/api/v1/packs/demo"), delete_pack._get_kwargs("demo"))
    client.delete_index(row["id"])
    assert_same_request(api, last(api, "DELETE", "/api/v1/pack-indices/%d" % row["id"]), delete_pack_index._get_kwargs(row["id"]))

    # refresh and password login
    api.expire_access_tokens()
    refresh = [r for r in api.requests if r.path == "/auth/token-login"][-1]
    client.list_packs()
    ours = last(api, "POST", "/auth/refresh")
    assert_same_request(api, ours, refresh_token._get_kwargs(body=RefreshTokenRequest(refresh_token=ours.json["refresh_token"])))
    assert refresh is not None
    api.add_user("admin", password="pw-1234")
    _api.AttuneApi(api.url(), username="admin", password="pw-1234", ca_path=api.ca_path).list_indices()
    assert_same_request(api, last(api, "POST", "/auth/login"),
                        login._get_kwargs(body=LoginRequest(login="admin", password="pw-1234")))


def test_the_sdk_is_the_pinned_release():
    """The contract is checked against the release tests/requirements.txt pins (the newest, issue 16 item 13), not
    whatever an old venv holds."""
    import re
    from importlib.metadata import version

    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "requirements.txt"), encoding="utf-8") as handle:
        pin = re.search(r"^attune-sdk==([0-9][^ ;]*)", handle.read(), re.M).group(1)
    assert version("attune-sdk") == pin, "attune-sdk %s is installed, tests/requirements.txt pins %s: make venv" % (
        version("attune-sdk"), pin)
    assert tuple(int(part) for part in pin.split(".")) >= (0, 5, 4)


def test_sdk_upload_boundary_is_fixed():
    """Why the collection does not use attune-sdk's upload: its multipart boundary is the constant '+++'."""
    kwargs = upload_pack._get_kwargs(body=PackUploadForm(pack=File(payload=io.BytesIO(b"x"), file_name="p.tar.gz")))
    assert kwargs["headers"]["Content-Type"] == "multipart/form-data; boundary=+++"
