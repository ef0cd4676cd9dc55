"""Static checks of the deployment files: Dockerfiles, compose, monitoring, workflows, Bicep.

No container engine, no network: they parse the files and check what matters — the runtime image
has no torch and runs as a non-root user with a readiness HEALTHCHECK, every action is pinned to a
full commit SHA, every job has least-privilege permissions, the dashboard queries only metrics that
app/metrics.py exports, and the Bicep parameter files match the template's parameters. The real
checks (build, run, smoke test, linters) are recorded in docs/deployment.md and run in CI.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Settings
from app.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
AZURE = ROOT / "deploy" / "azure"
DASHBOARDS = ROOT / "monitoring" / "grafana" / "dashboards"
DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
READY_PATH = "/health/ready"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workflow_on(workflow: dict[str, Any]) -> Any:
    # PyYAML (YAML 1.1) reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = (ROOT / dockerfile).read_text(encoding="utf-8")
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    return [
        (lo.split(None, 1)[0].upper(), lo.split(None, 1)[1] if " " in lo.strip() else "") for lo in logical
    ]


def stages(dockerfile: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(dockerfile):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


# --------------------------------------------------------------------------------------------
# Dockerfiles
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_is_multi_stage_with_a_final_runtime_stage(dockerfile: str) -> None:
    froms = [args for name, args in instructions(dockerfile) if name == "FROM"]
    assert len(froms) >= 2, "a builder stage and a runtime stage"
    assert froms[-1].split()[-1] == "runtime"
    for base in froms:
        image = base.split()[0]
        assert ":" in image and not image.endswith(":latest"), f"pin the base image tag: {image}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_runtime_stage_runs_as_a_numeric_non_root_user(dockerfile: str) -> None:
    users = [args.strip() for name, args in stages(dockerfile)[-1] if name == "USER"]
    assert users, "the runtime stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, f"numeric non-root uid expected, got {users[-1]!r}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_healthcheck_probes_readiness_on_hwr_port(dockerfile: str) -> None:
    checks = [args for name, args in stages(dockerfile)[-1] if name == "HEALTHCHECK"]
    assert len(checks) == 1
    assert READY_PATH in checks[0] and "HWR_PORT" in checks[0]
    command = json.loads(checks[0][checks[0].index("CMD") + 3 :].strip())
    assert command[0] == "python", "exec form, no shell or curl needed"
    # podman's Docker-compatible API splits healthcheck arguments at spaces (docs/deployment.md).
    assert all(" " not in argument for argument in command)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_runtime_stage_serves_the_committed_models_and_never_copies_training(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    copies = [args for name, args in runtime if name == "COPY"]
    assert any(args.startswith("models/") for args in copies)
    assert any(args.startswith("app/") for args in copies)
    assert any(args.startswith("contract/") for args in copies), "the service imports the contract package"
    assert not any("training" in args or args.split()[0] == "." for args in copies)
    env = " ".join(args for name, args in runtime if name == "ENV")
    assert "HWR_MODEL_DIR=" in env and "HWR_PORT=" in env
    assert [args for name, args in runtime if name == "CMD"] == ['["python", "-m", "app"]']


@pytest.mark.parametrize(("dockerfile", "extra"), [("Dockerfile", "cpu"), ("Dockerfile.gpu", "gpu")])
def test_image_installs_only_the_hash_pinned_serving_dependencies(dockerfile: str, extra: str) -> None:
    text = (ROOT / dockerfile).read_text(encoding="utf-8")
    builder = stages(dockerfile)[0]
    # The requirements are this flavour's lock file, every package pinned with its hash...
    assert ("COPY", f"requirements/serve-{extra}.txt ./requirements.txt") in builder
    installs = [args for name, args in builder if name == "RUN" and "pip install" in args]
    assert len(installs) == 1
    assert "--require-hashes" in installs[0] and "--only-binary=:all:" in installs[0]
    assert "-r requirements.txt" in installs[0]
    # ...never the `train` extra, the project itself (which would pull `training/`), or torch by name,
    assert "'train'" not in text and "[train" not in text and not re.search(r"pip install (-e )?\.", text)
    assert not re.search(r"pip install[^\n]*torch", text)
    # and the build fails if torch ever arrives as a transitive dependency.
    assert re.search(r"grep -iE '\^\(torch\|torchvision\|", text)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_runtime_stage_keeps_writer_enrolments_in_a_service_owned_directory(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    runs = " ".join(args for name, args in runtime if name == "RUN")
    assert "mkdir -p /var/lib/hwr" in runs and "chown 10001:10001 /var/lib/hwr" in runs
    env = " ".join(args for name, args in runtime if name == "ENV")
    assert "HWR_WRITER_DB=/var/lib/hwr/writers.sqlite3" in env
    assert "HWR_WRITER_MODEL_DIR=/srv/hwr/models/writers" in env


def test_runtime_dependencies_have_no_torch() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for extra in ("cpu", "gpu"):
        requirements = project["dependencies"] + project["optional-dependencies"][extra]
        names = {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower() for r in requirements}
        assert not names & {"torch", "torchvision", "onnx", "onnxscript", "albumentations"}, extra
        assert ("onnxruntime-gpu" if extra == "gpu" else "onnxruntime") in names


def test_dockerignore_keeps_the_context_to_app_contract_models_and_the_lock_files() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: ignore everything, then re-include"
    assert {"!app/", "!contract/", "!models/", "!requirements/"} <= set(lines)
    assert not any(line.startswith("!") and ("training" in line or ".venv" in line) for line in lines)


# --------------------------------------------------------------------------------------------
# docker-compose.yml and monitoring
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(ROOT / "docker-compose.yml")


def test_compose_service_has_port_env_healthcheck_limits(compose: dict[str, Any]) -> None:
    service = compose["services"]["hwr"]
    assert service["build"]["context"] == "."
    assert any(str(port).endswith(":8000") for port in service["ports"])
    assert "profiles" not in service, "`docker compose up` must start the service"
    env = service["environment"]
    assert env["HWR_PORT"] == "8000"
    assert {"HWR_LOG_LEVEL", "HWR_MAX_UPLOAD_BYTES", "HWR_ORT_INTRA_OP_THREADS"} <= set(env)
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD" and READY_PATH in test[-1]
    assert all(" " not in argument for argument in test[1:])
    limits = service["deploy"]["resources"]["limits"]
    assert limits["cpus"] and limits["memory"]
    grace = int(service["stop_grace_period"].removesuffix("s"))
    assert grace > Settings.model_fields["shutdown_timeout_s"].default, "SIGTERM, then SIGKILL"
    assert service["read_only"] is True
    assert any(str(mount).startswith("/tmp") for mount in service["tmpfs"]), "worker metrics live in /tmp"
    assert service["cap_drop"] == ["ALL"]


def test_compose_healthcheck_is_the_dockerfile_healthcheck(compose: dict[str, Any]) -> None:
    dockerfile = next(args for name, args in stages("Dockerfile")[-1] if name == "HEALTHCHECK")
    command = json.loads(dockerfile[dockerfile.index("CMD") + 3 :].strip())
    assert compose["services"]["hwr"]["healthcheck"]["test"][1:] == command


def test_monitoring_profile_brings_prometheus_and_grafana(compose: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        service = compose["services"][name]
        assert service["profiles"] == ["monitoring"]
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), image
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts a missing path: {source}"


def test_prometheus_scrapes_the_service() -> None:
    config = load_yaml(ROOT / "monitoring" / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for sc in jobs["hwr"]["static_configs"] for t in sc["targets"]]
    assert targets == ["hwr:8000"]
    assert jobs["hwr"].get("metrics_path", "/metrics") == "/metrics"


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    provisioning = ROOT / "monitoring" / "grafana" / "provisioning"
    datasources = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert [d["uid"] for d in datasources] == ["prometheus"]
    assert datasources[0]["url"] == "http://prometheus:9090"
    providers = load_yaml(provisioning / "dashboards" / "dashboards.yml")["providers"]
    assert providers[0]["options"]["path"] == "/etc/grafana/dashboards"


def exported_metric_names() -> set[str]:
    """The series names app/metrics.py's registry exposes (counter `_total`, histogram parts)."""
    metrics = Metrics()
    metrics.requests.labels(task="letter", status="200").inc()
    metrics.observe_stages("letter", {"total": 0.01})
    metrics.request_seconds.labels(endpoint="predict", task="letter", version="1", code="2xx").observe(0.01)
    metrics.in_flight.labels(endpoint="predict").inc()
    metrics.loaded([("letter", "letters", "1")])
    metrics.workers_serving.set(1)
    return {sample.name for family in metrics.registry.collect() for sample in family.samples}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads((DASHBOARDS / "hwr.json").read_text(encoding="utf-8"))


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_dashboard_queries_only_metrics_the_service_exports(dashboard: dict[str, Any]) -> None:
    exported = exported_metric_names()
    used = {name for expr in dashboard_exprs(dashboard) for name in re.findall(r"\bhwr_\w+", expr)}
    assert used, "the dashboard queries the service's metrics"
    assert used <= exported, f"not exported by app/metrics.py: {sorted(used - exported)}"
    assert {"hwr_requests_total", "hwr_stage_seconds_bucket"} <= used


def test_dashboard_shows_whole_request_latency_in_flight_and_model_versions(
    dashboard: dict[str, Any],
) -> None:
    exprs = dashboard_exprs(dashboard)
    assert any("histogram_quantile" in e and "hwr_request_duration_seconds_bucket" in e for e in exprs)
    assert any("hwr_requests_in_flight" in e for e in exprs)
    assert any("hwr_model_info" in e and "version" in e for e in exprs)


def test_alert_examples_are_loaded_and_query_only_exported_metrics() -> None:
    monitoring = ROOT / "monitoring" / "prometheus"
    assert load_yaml(monitoring / "prometheus.yml")["rule_files"] == ["/etc/prometheus/alerts.yml"]
    compose = load_yaml(ROOT / "docker-compose.yml")
    assert (
        "./monitoring/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro"
        in compose["services"]["prometheus"]["volumes"]
    )
    rules = [rule for group in load_yaml(monitoring / "alerts.yml")["groups"] for rule in group["rules"]]
    assert len(rules) >= 4
    exported = exported_metric_names()
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule
        used = set(re.findall(r"\bhwr_\w+", rule["expr"]))
        assert used and used <= exported, (rule["alert"], sorted(used - exported))


def test_dashboard_shows_request_rate_error_rate_and_per_stage_latency(dashboard: dict[str, Any]) -> None:
    exprs = dashboard_exprs(dashboard)
    assert any("rate(hwr_requests_total" in e and "status" not in e for e in exprs), "request rate"
    assert any('status=~"5..' in e for e in exprs), "error rate"
    assert any("histogram_quantile" in e and "by (stage, le)" in e for e in exprs), "per-stage latency"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus"
    assert dashboard["uid"] and len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


# --------------------------------------------------------------------------------------------
# GitHub Actions workflows
# --------------------------------------------------------------------------------------------


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def all_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_the_two_workflows_exist() -> None:
    assert {p.name for p in workflow_files()} >= {"ci.yml", "deploy.yml"}


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_actions_are_pinned_to_full_commit_shas_with_a_version_comment(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
        if not match or match.group(1).startswith("./"):
            continue
        assert SHA_PIN.match(match.group(1)), f"{path.name}: not pinned to a commit SHA: {line.strip()}"
        assert re.search(r"#\s*v\d+(\.\d+)*", match.group(2)), f"{path.name}: no version comment: {line}"


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_permissions_are_least_privilege(path: Path) -> None:
    workflow = load_yaml(path)
    assert workflow.get("permissions") == {}, "no default permissions at the top level"
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{path.name}:{name} declares its permissions"
        assert "write-all" not in str(permissions)
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes <= {"id-token"}, f"{path.name}:{name} writes {writes}"


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_checkouts_do_not_persist_credentials(path: Path) -> None:
    for step in all_steps(load_yaml(path)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False


def test_ci_runs_on_pull_requests_and_pushes_and_can_be_called() -> None:
    triggers = workflow_on(load_yaml(WORKFLOWS / "ci.yml"))
    assert {"pull_request", "push", "workflow_call"} <= set(triggers)


def test_ci_lints_type_checks_tests_builds_and_smoke_tests() -> None:
    workflow = load_yaml(WORKFLOWS / "ci.yml")
    runs = "\n".join(str(step.get("run", "")) for step in all_steps(workflow))
    for command in (
        "ruff check",
        "ruff format --check",
        "mypy contract app",
        "pip-audit",
        "make test",
        "docker build",
    ):
        assert command in runs, command
    assert "docker compose" in runs and "up" in runs
    assert "/predict/letter" in runs and "tests/data/A_photo.jpg" in runs
    assert "hadolint" in runs and "actionlint" in runs and "zizmor" in runs and "az bicep" in runs


def test_deploy_runs_on_push_to_main_after_ci() -> None:
    workflow = load_yaml(WORKFLOWS / "deploy.yml")
    assert workflow_on(workflow) == {"push": {"branches": ["main"]}}
    jobs = workflow["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["deploy"]["needs"] == "ci"
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_deploy_uses_oidc_and_no_stored_secrets() -> None:
    workflow = load_yaml(WORKFLOWS / "deploy.yml")
    job = workflow["jobs"]["deploy"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    login = [s for s in job["steps"] if str(s.get("uses", "")).startswith("azure/login@")]
    assert len(login) == 1
    assert set(login[0]["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert all(str(v).startswith("${{ vars.") for v in login[0]["with"].values())
    assert "secrets." not in (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8")


def test_ci_tests_both_pythons_caches_pip_and_hands_the_tested_image_to_the_deployment() -> None:
    workflow = load_yaml(WORKFLOWS / "ci.yml")
    test = workflow["jobs"]["test"]
    assert test["strategy"]["matrix"]["python"] == ["3.11", "3.12"]
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("actions/setup-python@"):
                assert step["with"]["cache"] == "pip", name
    image = workflow["jobs"]["image"]
    upload = next(s for s in image["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "hwr-image" and "refs/heads/main" in upload["if"]
    runs = "\n".join(str(step.get("run", "")) for step in image["steps"])
    assert "docker save hwr:local" in runs
    audit = "\n".join(str(step.get("run", "")) for step in workflow["jobs"]["audit"]["steps"])
    assert "--require-hashes" in audit and "requirements/serve-cpu.txt" in audit


def test_deploy_promotes_the_tested_image_by_digest_without_building() -> None:
    job = load_yaml(WORKFLOWS / "deploy.yml")["jobs"]["deploy"]
    runs = "\n".join(str(step.get("run", "")) for step in job["steps"])
    assert "docker build" not in runs, "the deployment pushes the image CI tested"
    download = next(
        s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact@")
    )
    assert download["with"]["name"] == "hwr-image"
    image = next(s for s in job["steps"] if s.get("id") == "image")
    assert "docker load" in image["run"] and "hwr-image.id" in image["run"]
    assert "RepoDigests" in image["run"] and "@sha256:" in image["run"]
    assert "docker push" in runs and "az acr login" in runs
    assert job["env"]["IMAGE_TAG"] == "${{ github.sha }}"


def test_deploy_tests_a_zero_traffic_revision_on_its_own_url_then_promotes_it() -> None:
    job = load_yaml(WORKFLOWS / "deploy.yml")["jobs"]["deploy"]
    steps = job["steps"]
    ids = [step.get("id") for step in steps]
    assert ids.index("deploy") < ids.index("smoke") < ids.index("promote")
    runs = "\n".join(str(step.get("run", "")) for step in steps)
    assert runs.count("--template-file deploy/azure/main.bicep") == 2
    deploy = steps[ids.index("deploy")]
    assert "containerImage=" in deploy["run"] and 'stableRevision="$PREVIOUS"' in deploy["run"]
    assert "revisionSuffix=" in deploy["run"] and "properties.fqdn" in deploy["run"]
    smoke = steps[ids.index("smoke")]
    assert smoke["env"]["URL"] == "${{ steps.deploy.outputs.revision_url }}", "the revision's own URL"
    assert "/predict/letter" in smoke["run"] and "/health/ready" in smoke["run"]
    assert "Authorization: Bearer" in smoke["run"] and "= 401" in smoke["run"], "token required"
    assert "::add-mask::" in smoke["run"]
    promote = steps[ids.index("promote")]
    assert "ingress traffic set" in promote["run"] and '"$CURRENT=100"' in promote["run"]
    rollback = next(s for s in steps if "Roll back" in s.get("name", ""))
    assert rollback["if"].startswith("failure()")
    assert "ingress traffic set" in rollback["run"] and '"$PREVIOUS=100"' in rollback["run"]


def test_deploy_creates_the_secrets_in_key_vault_without_printing_them() -> None:
    job = load_yaml(WORKFLOWS / "deploy.yml")["jobs"]["deploy"]
    step = next(s for s in job["steps"] if "Key Vault" in s.get("name", "") and "exist" in s["name"])
    assert "az keyvault secret set" in step["run"] and "::add-mask::" in step["run"]
    assert "openssl rand" in step["run"]
    ids = [s.get("id") for s in job["steps"]]
    assert job["steps"].index(step) < ids.index("deploy"), "secrets exist before the app reads them"


# --------------------------------------------------------------------------------------------
# Bicep and its parameter files
# --------------------------------------------------------------------------------------------


def bicep_parameters() -> dict[str, str]:
    """name → declaration line of every `param` in main.bicep."""
    text = (AZURE / "main.bicep").read_text(encoding="utf-8")
    return {m.group(1): m.group(0) for m in re.finditer(r"^param (\w+) .*$", text, re.M)}


def test_bicep_declares_what_the_issue_asks_for() -> None:
    text = (AZURE / "main.bicep").read_text(encoding="utf-8")
    for resource_type in (
        "Microsoft.ContainerRegistry/registries",
        "Microsoft.OperationalInsights/workspaces",
        "Microsoft.App/managedEnvironments",
        "Microsoft.App/containerApps",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.KeyVault/vaults",
        "Microsoft.Monitor/accounts",
        "Microsoft.Insights/dataCollectionRules",
    ):
        assert f"'{resource_type}@" in text, resource_type
    assert "7f951dda-4ed3-4680-a7ca-43fe172d538d" in text, "AcrPull role"
    assert "4633458b-17de-408a-b874-0445c86b69e6" in text, "Key Vault Secrets User role"
    assert "3913510d-42f4-4e42-8a64-420c390055eb" in text, "Monitoring Metrics Publisher role"
    assert "adminUserEnabled: false" in text
    for probe in ("Liveness", "Readiness"):
        assert f"type: '{probe}'" in text
    assert "'/health/live'" in text and "'/health/ready'" in text
    assert "minReplicas: minReplicas" in text and "maxReplicas: maxReplicas" in text
    assert "concurrentRequests" in text and "http: {" in text
    for output in ("acrName", "acrLoginServer", "appName", "appFqdn", "latestRevisionName", "keyVaultName"):
        assert re.search(rf"^output {output} ", text, re.M), output


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """main.bicep parsed by pycep (a Python Bicep parser: syntax and structure, not Azure's
    type checks, which need `az bicep build`)."""
    from pycep import BicepParser

    return BicepParser().parse(text=(AZURE / "main.bicep").read_text(encoding="utf-8"))


def resource(template: dict[str, Any], name: str) -> dict[str, Any]:
    config = template["resources"][name]["config"]
    return config.get("config", config) if "condition" in config else config


def find(value: Any, key: str) -> list[Any]:
    """Every value under `key` anywhere in a parsed tree."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                found.append(v)
            found += find(v, key)
    elif isinstance(value, list):
        for item in value:
            found += find(item, key)
    return found


def test_every_bicep_file_parses_and_the_module_exists(template: dict[str, Any]) -> None:
    from pycep import BicepParser

    modules = template.get("modules", {})
    assert "postgres" in modules
    path = AZURE / modules["postgres"]["detail"]["path"]
    assert path.is_file()
    postgres = BicepParser().parse(text=path.read_text(encoding="utf-8"))
    types = {r["type"] for r in postgres["resources"].values()}
    assert "Microsoft.DBforPostgreSQL/flexibleServers" in types
    assert "Microsoft.KeyVault/vaults/secrets" in types, "the connection URL goes to Key Vault"
    assert postgres["parameters"]["administratorPassword"]["decorators"][0]["type"] == "secure"
    for name, output in postgres["outputs"].items():
        assert "password" not in name.lower() and "Password" not in str(output), "no secret output"
    text = path.read_text(encoding="utf-8")
    assert "require_secure_transport" in text and "sslmode=require" in text


def test_the_api_token_is_a_key_vault_reference_read_by_the_managed_identity(
    template: dict[str, Any],
) -> None:
    text = (AZURE / "main.bicep").read_text(encoding="utf-8")
    assert re.search(
        r"keyVaultUrl: '\$\{vault\.properties\.vaultUri\}secrets/\$\{apiTokenSecretName\}'", text
    )
    assert "identity: identity.id" in text[text.index("var apiTokenSecret") :]
    app = resource(template, "app")
    assert app["properties"]["configuration"]["ingress"]["external"] is True
    env = find(app["properties"]["template"], "env")
    flat = json.dumps(env)
    # Unconditional: the public ingress always has a token; a missing secret fails the revision.
    assert '{"name": "HWR_API_TOKEN", "secretRef": "api-token"}' in flat
    assert "apiTokenSecret" in json.dumps(app["properties"]["configuration"]["secrets"])
    vault = resource(template, "vault")["properties"]
    assert vault["enableRbacAuthorization"] is True and vault["enablePurgeProtection"] is True
    assert "secretsUser" in app["dependsOn"]
    assert "HWR_API_TOKEN', value" not in text, "never a plain value"


def test_writers_live_in_postgres_or_are_off_never_on_replica_disk(template: dict[str, Any]) -> None:
    parameter = template["parameters"]["writerStore"]
    allowed = next(d["argument"] for d in parameter["decorators"] if d["type"] == "allowed")
    assert sorted(allowed) == ["off", "postgres"] and parameter["default"] == "postgres"
    text = (AZURE / "main.bicep").read_text(encoding="utf-8")
    assert "{ name: 'HWR_WRITER_DB', secretRef: 'writer-db' }" in text
    assert "HWR_WRITER_DB', value" not in text, "the image's default is a file on the replica's disk"
    app = resource(template, "app")
    volumes = json.dumps(find(app, "storageType"))
    assert "EmptyDir" not in volumes and "AzureFile" not in volumes
    assert template["modules"]["postgres"]["config"]["condition"], (
        "only with an image and writerStore=postgres"
    )


def test_a_new_revision_gets_no_traffic_until_promoted(template: dict[str, Any]) -> None:
    app = resource(template, "app")
    assert app["properties"]["configuration"]["activeRevisionsMode"] == "Multiple"
    assert app["properties"]["configuration"]["ingress"]["traffic"] == "traffic"
    candidate = template["variables"]["candidateTraffic"]["value"]
    assert {"revisionName": "stableRevision", "weight": 100} in candidate
    latest = next(entry for entry in candidate if entry.get("latestRevision") is True)
    assert latest["weight"] == 0
    assert "revisionSuffix" in app["properties"]["template"]


def admission_limit(workers: int, max_concurrency: int, max_queue: int) -> int:
    return workers * (max_concurrency + max_queue)


def test_the_scale_rule_acts_below_the_admission_limit(template: dict[str, Any]) -> None:
    parameters = template["parameters"]
    # The template's defaults are the service's (app/config.py), so the limit computed is the real one.
    assert parameters["maxConcurrency"]["default"] == Settings.model_fields["max_concurrency"].default
    assert parameters["maxQueue"]["default"] == Settings.model_fields["max_queue"].default
    defaults = {name: parameters[name]["default"] for name in ("workers", "maxConcurrency", "maxQueue")}
    limit = admission_limit(defaults["workers"], defaults["maxConcurrency"], defaults["maxQueue"])
    assert parameters["concurrentRequests"]["default"] < limit
    text = (AZURE / "main.bicep").read_text(encoding="utf-8")
    assert "var admissionLimit = workers * (maxConcurrency + maxQueue)" in text
    assert "var scaleConcurrency = max(1, min(concurrentRequests, admissionLimit - 1))" in text
    assert "concurrentRequests: string(scaleConcurrency)" in text
    for name in ("HWR_MAX_CONCURRENCY", "HWR_MAX_QUEUE", "HWR_WORKERS"):
        assert f"name: '{name}'" in text, "the limit the scale rule assumes is the one the service applies"
    for environment in ("dev", "prod"):
        document = json.loads((AZURE / "parameters" / f"{environment}.json").read_text(encoding="utf-8"))
        values = {**defaults, **{k: v["value"] for k, v in document["parameters"].items()}}
        limit = admission_limit(values["workers"], values["maxConcurrency"], values["maxQueue"])
        assert values["concurrentRequests"] < limit, environment


def test_metrics_are_scraped_into_managed_prometheus(template: dict[str, Any]) -> None:
    assert template["resources"]["metricsWorkspace"]["type"] == "Microsoft.Monitor/accounts"
    rule = resource(template, "metricsRule")["properties"]
    assert rule["dataFlows"][0]["streams"] == ["Microsoft-PrometheusMetrics"]
    text = (AZURE / "main.bicep").read_text(encoding="utf-8")
    assert "name: 'prometheus'" in text and "'--agent'" in text
    config = text[text.index("var prometheusConfig") :]
    assert "targets: [\\'localhost:${port}\\']" in config, "scrapes the service in the same replica"
    assert "azuread:" in config and "client_id: ${identity.properties.clientId}" in config
    assert "replica: \\${CONTAINER_APP_REPLICA_NAME}" in config, "replicas' series kept apart"
    # The scrape path is Prometheus's default, which the service serves.
    assert "metrics_path" not in config
    assert '@router.get("/metrics"' in (ROOT / "app" / "api" / "health.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_parameter_files_match_the_template(environment: str) -> None:
    document = json.loads((AZURE / "parameters" / f"{environment}.json").read_text(encoding="utf-8"))
    assert document["$schema"].endswith("deploymentParameters.json#")
    values = {name: entry["value"] for name, entry in document["parameters"].items()}
    declared = bicep_parameters()
    assert set(values) <= set(declared), f"unknown parameters: {sorted(set(values) - set(declared))}"
    required = {name for name, line in declared.items() if "=" not in line}
    assert required <= set(values) | {"containerImage"}
    assert values["environmentName"] == environment
    assert "containerImage" not in values, "the pipeline passes the image per commit"
    assert 0 <= values["minReplicas"] <= values["maxReplicas"]


def test_the_workflow_reads_the_prod_parameter_file_and_the_readme_lists_its_variables() -> None:
    job = load_yaml(WORKFLOWS / "deploy.yml")["jobs"]["deploy"]
    assert (ROOT / job["env"]["PARAMETERS"]).is_file()
    text = (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8")
    variables = set(re.findall(r"\bvars\.(\w+)", text))
    readme = (AZURE / "README.md").read_text(encoding="utf-8")
    assert variables, "the workflow reads GitHub variables"
    for variable in variables:
        assert variable in readme, f"deploy/azure/README.md does not explain {variable}"
