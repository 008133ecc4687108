"""The deployment files parse and say what a shared deployment needs."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_docker_compose_defines_databases_and_object_store_with_health_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"mysql", "postgres", "minio"} <= set(services)
    assert services["mysql"]["image"].startswith("mysql:8")
    for name in ("mysql", "postgres", "minio"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
        assert services[name]["ports"], f"{name} publishes no port"
    assert services["minio-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    for volume in ("mysql-data", "postgres-data", "minio-data"):
        assert volume in compose["volumes"]


def test_ci_runs_the_readme_test_command_with_both_servers():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make demo" in readme
    assert "postgresql://" in ci and "mysql://" in ci
