"""Release lines: a plugin renders as the installed version of its mesh (Dapr 1.16 vs 1.18), an
unknown newer version as the newest line with a warning; keys read only by some lines; the setting
types Dapr needs; the namespaces no mesh may enter."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import apply, make_pod, namespace, validate_pod
from webhook.engine.config import Config
from webhook.engine.discovery import Discovery
from webhook.engine.errors import ConfigError, PodDenied
from webhook.engine.injector import Injector
from webhook.engine.patch import uninject
from webhook.engine.plugins import load_plugins
from webhook.engine.releases import Releases, applies, load_lines, load_releases, parse_version, version_at_least
from webhook.engine.settings import load_setting
from webhook.engine.values import apply_values

DAPR = {"dapr.io/enabled": "true", "dapr.io/app-id": "web"}


def injector(version: str, **config: Any) -> Injector:
    plugins = apply_values(load_plugins(), {"dapr": {"version": version}})
    return Injector(plugins=plugins, config=Config(**config))


def daprd(version: str, annotations: dict[str, str] | None = None, **config: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    pod = make_pod(annotations={**DAPR, **(annotations or {})})
    result = injector(version, **config).inject(pod, namespace())
    injected = apply(pod, result.patch)
    validate_pod(injected)
    assert uninject(injected) == pod
    spec = injected["spec"]
    found = next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "daprd")
    return found, result.warnings


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.18.3", (1, 18, 3)), ("v1.16.19", (1, 16, 19)), ("1.18", (1, 18, 0)), ("1.18.0-rc.1", (1, 18, 0)), ("edge", None), ("", None)],
)
def test_parse_version(text: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == expected


def test_version_at_least_counts_a_tag_that_is_no_version_as_newest() -> None:
    assert version_at_least("1.18.3", "1.18") and not version_at_least("1.16.19", "1.18")
    assert version_at_least("latest", "1.18") and version_at_least("1.19.0", "1.18")


def test_release_warnings() -> None:
    releases = Releases("version", ("1.16", "1.18"))
    assert releases.warning("dapr", {"version": "1.18.3"}) is None
    # Between lines: rendered as the older one, which may not be what that release renders.
    assert "1.17.0 is on release line 1.17, which the template does not know; rendered as 1.16" in str(
        releases.warning("dapr", {"version": "1.17.0"}))
    assert Releases("version", ("1.28", "1.29", "1.30")).warning("istio", {"version": "1.29.6"}) is None
    assert "newer than the newest known release line 1.18" in str(releases.warning("dapr", {"version": "1.19.1"}))
    assert "older than the oldest known release line 1.16" in str(releases.warning("dapr", {"version": "1.14.4"}))
    assert "not a version" in str(releases.warning("dapr", {"version": "edge"}))


def test_each_line_renders_its_own_defaults() -> None:
    new, warnings = daprd("1.18.3")
    assert new["image"] == "ghcr.io/dapr/daprd:1.18.3" and warnings == ()
    assert new["livenessProbe"]["initialDelaySeconds"] == 180 and new["readinessProbe"]["periodSeconds"] == 1
    assert "--scheduler-host-address" in new["args"]
    old, _ = daprd("1.16.19")
    assert old["image"] == "ghcr.io/dapr/daprd:1.16.19"
    assert old["livenessProbe"]["initialDelaySeconds"] == 3 and old["readinessProbe"]["periodSeconds"] == 6
    assert "--scheduler-host-address" not in old["args"]
    env = {e["name"]: e.get("value") for e in old["env"]}
    assert env["DAPR_SCHEDULER_HOST_ADDRESS"].count(":50006") == 3


def test_the_117_line_takes_118s_scheduler_flag_and_116s_probes() -> None:
    container, warnings = daprd("1.17.13", {"dapr.io/disable-init-endpoints": "true"})
    assert warnings == () and container["livenessProbe"]["initialDelaySeconds"] == 3
    assert "--scheduler-host-address" in container["args"] and "--disable-init-endpoints" in container["args"]
    assert not any(e["name"].startswith("DAPR_SCHEDULER") for e in container["env"])


@pytest.mark.parametrize(("version", "injected"), [("1.17.2", True), ("1.17.3", False), ("1.16.19", True)])
def test_the_enabled_gate_takes_only_true_from_1173(version: str, injected: bool) -> None:
    result = injector(version).inject(make_pod(annotations={**DAPR, "dapr.io/enabled": "yes"}), namespace())
    assert (result.plugins == ("dapr",)) is injected


def test_the_server_reports_a_release_warning_once() -> None:
    # Logged at start-up for the pinned version, and by the watches for a discovered one.
    discovery = Discovery(apply_values(load_plugins(), {"dapr": {"version": "1.15.2"}}))
    assert [w for w in discovery.unreported_warnings() if "1.15.2 is older" in w]
    assert discovery.unreported_warnings() == []  # once per process


def test_an_unknown_newer_version_renders_as_the_newest_line_with_a_warning() -> None:
    container, warnings = daprd("1.19.0")
    assert container["image"] == "ghcr.io/dapr/daprd:1.19.0"
    assert container["livenessProbe"]["initialDelaySeconds"] == 180
    assert any("newer than the newest known release line 1.18" in w for w in warnings)


def test_discovered_version_switches_the_rendering() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    engine = Injector(plugins=plugins, config=Config(), discovery=discovery)
    image = "ghcr.io/dapr/injector:1.16.19"
    deployment = {"spec": {"template": {"spec": {"containers": [{"name": "dapr-sidecar-injector", "image": image}]}}}}
    discovery.observe("Deployment", "dapr-system", "dapr-sidecar-injector", deployment)
    pod = make_pod(annotations={**DAPR, "dapr.io/enabled": "yes"})
    result = engine.inject(pod, namespace())
    assert result.plugins == ("dapr",)  # 1.16 takes any truthy value
    daprd_container = next(c for c in apply(pod, result.patch)["spec"]["initContainers"] if c["name"] == "daprd")
    assert daprd_container["image"] == "ghcr.io/dapr/daprd:1.16.19"


@pytest.mark.parametrize(("version", "value", "injected"), [
    ("1.18.3", "true", True), ("1.18.3", "TRUE", True), ("1.18.3", "yes", False), ("1.18.3", "1", False),
    ("1.16.19", "yes", True), ("1.16.19", "on", True), ("1.16.19", "false", False), ("1.16.19", "garbage", False),
    # 1.16's IsTruthy trims blanks (Go's TrimSpace: a no-break space too, \x1f not); 1.18's handler trims nothing.
    ("1.16.19", " true", True), ("1.16.19", "\u00a0Yes\n", True), ("1.16.19", "\x1ftrue", False),
    ("1.18.3", " true", False), ("1.18.3", "true ", False),
])  # fmt: skip
def test_the_enabled_gate_follows_the_release(version: str, value: str, injected: bool) -> None:
    result = injector(version).inject(make_pod(annotations={**DAPR, "dapr.io/enabled": value}), namespace())
    assert (result.plugins == ("dapr",)) is injected


def test_a_key_only_newer_lines_read_is_ignored_on_older_ones() -> None:
    native = {"dapr.io/enable-native-sidecar": "true", "dapr.io/disable-init-endpoints": "x"}
    new, _ = daprd("1.18.3", native, sidecar_style="classic")
    assert new.get("restartPolicy") == "Always" and "--disable-init-endpoints" in new["args"]
    old, _ = daprd("1.16.19", native, sidecar_style="classic")
    assert "restartPolicy" not in old and "--disable-init-endpoints" not in old["args"]
    classic, _ = daprd("1.18.3", {"dapr.io/enable-native-sidecar": "no"}, sidecar_style="native")
    assert "restartPolicy" not in classic


@pytest.mark.parametrize(("version", "read"), [
    ("1.16.17", False), ("1.16.18", True), ("1.17.11", False), ("1.17.12", True),
    ("1.18.2", False), ("1.18.3", True), ("1.19.0", True), ("1.15.9", False),
])  # fmt: skip
def test_a_key_backported_per_line_is_read_from_each_lines_patch(version: str, read: bool) -> None:
    # dapr/dapr#10300: only 1.16.18+, 1.17.12+ and 1.18.3+ read it; older daprd has no such flag and exits on it.
    container, _ = daprd(version, {"dapr.io/app-binding-options-timeout": "30s"})
    assert ("--app-binding-options-timeout" in container["args"]) is read


def test_per_line_thresholds() -> None:
    assert applies("1.16.18, 1.18.3", None, (1, 17, 0)) and not applies("1.16.18, 1.18.3", None, (1, 16, 5))
    assert not applies(None, "1.16.2", (1, 16, 2)) and applies(None, "1.16.2", (1, 16, 1))
    assert load_lines(["1.16.18", "1.18.3"], where="t") == "1.16.18, 1.18.3" and load_lines("1.18", where="t") == "1.18"
    for bad in (["1.18.3", "1.16.18"], ["1.18.1", "1.18.3"], [], ["edge"]):
        with pytest.raises(ConfigError):
            load_lines(bad, where="t")


@pytest.mark.parametrize(("version", "key", "value"), [
    ("edge-26.8.3", "config.linkerd.io/init-image", "mirror.internal.example/linkerd/proxy-init"),
    ("edge-26.8.3", "config.linkerd.io/init-image-version", "bad tag"),
    ("edge-25.10.7", "config.linkerd.io/proxy-additional-env", "FOO=bar"),
    ("edge-25.10.7", "config.linkerd.io/proxy-enable-native-sidecar", "yes"),
])  # fmt: skip
def test_a_key_the_release_does_not_read_is_not_checked(version: str, key: str, value: str) -> None:
    plugins = apply_values(load_plugins(), {"linkerd": {"version": version}})
    engine = Injector(plugins=plugins, config=Config())
    result = engine.inject(make_pod(annotations={key: value}), namespace("demo", None, {"linkerd.io/inject": "enabled"}))
    assert result.plugins == ("linkerd",)
    # Still a key Linkerd reads (in another release): no typo warning, and no release-line warning.
    assert not any(key in w or "release line" in w for w in result.warnings), result.warnings


def test_releases_without_lines_follow_the_version_without_a_warning() -> None:
    assert load_releases({"value": "version"}, {"version": "edge-26.8.3"}, where="t") == Releases("version")
    assert Releases("version").warning("linkerd", {"version": "edge-27.1.1"}) is None


def test_truthy_never_denies() -> None:
    setting = load_setting("x", {"key": "k", "type": "truthy"}, where="t")
    assert [setting.parse(v) for v in (" Yes ", "T", "1", "on", "no", "garbage", "")] == [True, True, True, True, False, False, False]


def test_assignments_keep_commas_inside_values() -> None:
    setting = load_setting("x", {"key": "k", "type": "assignments"}, where="t")
    assert setting.parse("A=1,B=x,y, C_2=z=3,bad") == [["A", "1"], ["B", "x,y"], ["C_2", "z=3,bad"]]
    assert setting.parse("noequals") == [] and setting.parse("") == []


def test_dapr_blanks_are_go_blanks() -> None:
    """RE2's \\s is ASCII; strings.TrimSpace drops Unicode blanks but not \\x1c-\\x1f (Python's strip does)."""
    assignments = load_setting("x", {"key": "k", "type": "assignments"}, where="t")
    assert assignments.parse("A=1,\u00a0B=2") == [["A", "1,\u00a0B=2"]]
    assert assignments.parse("A=1\x1f,\tB=2\u00a0") == [["A", "1\x1f"], ["B", "2"]]
    truthy = load_setting("x", {"key": "k", "type": "truthy"}, where="t")
    assert truthy.parse("\u3000true\u00a0") and not truthy.parse("true\x1f")
    pairs = load_setting("x", {"key": "k", "type": "pairs", "separator": ":"}, where="t")
    assert pairs.parse("\u00a0a:/x\x1f") == [["a", "/x\x1f"]]
    found, _ = daprd("1.18.3", {"dapr.io/env-from-secret": "A=s\u00a0:\u2003k"})
    assert {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}} in found["env"]


def test_pairs_drop_items_that_are_not_two_parts() -> None:
    setting = load_setting("x", {"key": "k", "type": "pairs", "separator": ":"}, where="t")
    assert setting.parse("a:/x, b:/y,c,d:e:f") == [["a", "/x"], ["b", "/y"]]


def test_release_lines_must_be_ordered(tmp_path: Any) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nkind: runtime\nvalues: {version: '1'}\nreleases: {value: version, lines: ['1.18', '1.16']}\n")
    with pytest.raises(ConfigError, match="oldest first"):
        load_plugins([tmp_path], builtin=None)


def test_no_mesh_in_the_dapr_control_plane_namespace() -> None:
    engine = injector("1.18.3")
    result = engine.inject(make_pod(annotations=DAPR), namespace("dapr-system", {"meshswitch.io/mode": "istio"}))
    assert result.plugins == ("dapr",)
    result = engine.inject(make_pod(), namespace("dapr-system", {"meshswitch.io/mode": "istio"}))
    assert result.plugins == () and result.reason.code == "plugin-disabled" and "dapr" in result.reason.message


def test_dapr_reads_its_keys_from_the_pod_only() -> None:
    engine = injector("1.18.3")
    ns = namespace("demo", annotations={"dapr.io/log-level": "debug", "dapr.io/app-port": "bad"})
    pod = make_pod(annotations=DAPR)
    result = engine.inject(pod, ns)
    args = next(c for c in apply(pod, result.patch)["spec"]["initContainers"] if c["name"] == "daprd")["args"]
    assert args[args.index("--log-level") + 1] == "info" and "--app-port" not in args


def chart_daprd(version: str, chart: dict[str, Any], annotations: dict[str, str] | None = None) -> tuple[dict[str, Any], tuple[str, ...]]:
    pod = make_pod(annotations={**DAPR, **(annotations or {})})
    plugins = apply_values(load_plugins(), {"dapr": {"version": version, **chart}})
    result = Injector(plugins=plugins, config=Config()).inject(pod, namespace())
    injected = apply(pod, result.patch)
    validate_pod(injected)
    spec = injected["spec"]
    return next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "daprd"), result.warnings


@pytest.mark.parametrize("version", ["1.18.3", "1.16.19"])
def test_the_charts_sidecar_user_and_group(version: str) -> None:
    # sidecar_container.go: the injector's SIDECAR_RUN_AS_USER/GROUP become daprd's runAsUser/runAsGroup.
    container, _ = chart_daprd(version, {"sidecarRunAsUser": 1000, "sidecarRunAsGroup": 2000})
    assert container["securityContext"]["runAsUser"] == 1000 and container["securityContext"]["runAsGroup"] == 2000
    default, _ = chart_daprd(version, {})
    assert "runAsUser" not in default["securityContext"] and "runAsGroup" not in default["securityContext"]
    # dapr.io/env setting SSL_CERT_DIR drops them, as Dapr does for the Windows administrator.
    windows, _ = chart_daprd(version, {"sidecarRunAsUser": 1000}, {"dapr.io/env": "SSL_CERT_DIR=/c"})
    assert "runAsUser" not in windows["securityContext"]


@pytest.mark.parametrize("version", ["1.18.3", "1.16.19"])
def test_the_charts_actors_and_reminders_services(version: str) -> None:
    scheduler = "scheduler:dapr-scheduler-server.dapr-system.svc.cluster.local:50006"
    container, warnings = chart_daprd(version, {"actorsServiceName": "scheduler", "remindersServiceName": "scheduler"})
    args = container["args"]
    assert "--placement-host-address" not in args and not warnings
    assert args[args.index("--actors-service") + 1] == scheduler and args[args.index("--reminders-service") + 1] == scheduler
    # The pod's placement address wins over the actors service; a blank one leaves it.
    pinned, _ = chart_daprd(version, {"actorsServiceName": "scheduler"}, {"dapr.io/placement-host-address": "p:1"})
    assert "--actors-service" not in pinned["args"] and "p:1" in pinned["args"]
    blank, _ = chart_daprd(version, {"actorsServiceName": "scheduler"}, {"dapr.io/placement-host-address": " "})
    assert "--actors-service" in blank["args"] and "--placement-host-address" not in blank["args"]
    off, _ = chart_daprd(version, {"actorsServiceName": "scheduler", "actorsEnabled": False})
    assert "--actors-service" not in off["args"]
    placement, _ = chart_daprd(version, {"remindersServiceName": "placement"})
    assert placement["args"][placement["args"].index("--reminders-service") + 1] == (
        "placement:dapr-placement-server.dapr-system.svc.cluster.local:50005")
    _, warned = chart_daprd(version, {"actorsServiceName": "elsewhere"})
    assert any("actorsServiceName" in w for w in warned)


@pytest.mark.parametrize("version", ["1.18.3", "1.16.19"])
def test_the_charts_sidecar_image_name(version: str) -> None:
    # dapr_sidecar_injector.image.name (tests/reference/dapr/install/image-name, image-full).
    named, _ = chart_daprd(version, {"sidecarImageName": "daprd-custom", "registry": "r.example/dapr"})
    assert named["image"] == f"r.example/dapr/daprd-custom:{version}"
    whole, _ = chart_daprd(version, {"sidecarImageName": "r.example/x/daprd:9"})
    assert whole["image"] == "r.example/x/daprd:9"
    pinned, _ = chart_daprd(version, {"sidecarImageName": "r.example/x/daprd:9"}, {"dapr.io/sidecar-image": "docker.io/daprio/daprd:1.17.0"})
    assert pinned["image"] == "docker.io/daprio/daprd:1.17.0"


@pytest.mark.parametrize("policy", ["Sometimes", "", "always"])
def test_a_pull_policy_dapr_does_not_know_is_if_not_present_with_a_warning(policy: str) -> None:
    # pkg/injector/service/config.go GetPullPolicy (tests/reference/dapr/install/pull-policy-unknown).
    container, warnings = chart_daprd("1.18.3", {"imagePullPolicy": policy})
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert any("imagePullPolicy must be Always, Never or IfNotPresent" in w for w in warnings), warnings
    known, quiet = chart_daprd("1.18.3", {"imagePullPolicy": "Never"})
    assert known["imagePullPolicy"] == "Never" and not quiet


def test_an_empty_cluster_domain_is_refused_naming_the_value() -> None:
    # Dapr's injector detects an empty kubeClusterDomain from its own pod's resolv.conf; meshswitch cannot.
    with pytest.raises(PodDenied, match="clusterDomain is empty"):
        chart_daprd("1.18.3", {"clusterDomain": ""})


@pytest.mark.parametrize(("version", "env"), [("1.16.1", False), ("1.16.2", True), ("1.16.19", True), ("1.18.3", False)])
def test_the_charts_skip_reminder_migration(version: str, env: bool) -> None:
    container, _ = chart_daprd(version, {"skipReminderMigration": True})
    assert ({"name": "DAPR_SKIP_REMINDER_MIGRATION", "value": "true"} in container["env"]) is env


@pytest.mark.parametrize("annotations", [
    {"dapr.io/debug-port": "70000"}, {"dapr.io/debug-port": "0"}, {"dapr.io/debug-port": "-1"},
    {"dapr.io/enable-debug": "no", "dapr.io/debug-port": "x"},
    {"dapr.io/app-health-probe-interval": "2147483648", "dapr.io/app-health-threshold": "-2147483649"},
])  # fmt: skip
def test_rule8_a_value_that_lands_nowhere_while_its_switch_is_off_is_not_denied(annotations: dict[str, str]) -> None:
    container, _ = daprd("1.18.3", annotations)
    assert "--listen" not in container["args"] and "--enable-app-health-check" not in container["args"]


@pytest.mark.parametrize(("annotations", "key"), [
    ({"dapr.io/enable-debug": "true", "dapr.io/debug-port": "70000"}, "dapr.io/debug-port"),
    ({"dapr.io/enable-app-health-check": "on", "dapr.io/app-health-probe-interval": "2147483648"}, "dapr.io/app-health-probe-interval"),
])  # fmt: skip
def test_rule8_with_its_switch_on_the_value_is_checked(annotations: dict[str, str], key: str) -> None:
    with pytest.raises(PodDenied, match=key):
        injector("1.18.3").inject(make_pod(annotations={**DAPR, **annotations}), namespace())


def test_used_when_names_an_earlier_switch(tmp_path: Any) -> None:
    (tmp_path / "p.yaml").write_text(
        "name: p\nkind: runtime\ndescription: d\non: [{in: pod, key: p/on, values: ['true']}]\n"
        "settings:\n  port: {key: p/port, type: port, usedWhen: debug}\n  debug: {key: p/debug, type: truthy}\n"
        "fragment: {}\n"
    )
    with pytest.raises(ConfigError, match="usedWhen"):
        load_plugins([tmp_path])
