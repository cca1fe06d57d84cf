"""Start-up order (#14): the object store's bucket exists before the first S3 health check.

Every start recorded an S3 failure — the first check ran before the bucket was created — so a
healthy backend reported "ObjectStoreError" and 96 % availability for S3 for as long as it ran.
Against the real S3 server the suite starts, with a bucket that does not exist yet."""

from __future__ import annotations

from pathlib import Path

from backend.api.models.health import ServiceHealth
from tests.backend.integration.conftest import backend_settings, running
from tests.support import FaultProxy, PostgresServer, S3Server


async def test_a_fresh_start_records_no_s3_failure(
    postgres_server: PostgresServer,
    pg_proxy: FaultProxy,
    s3_server: S3Server,
    s3_proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    settings, dsn = backend_settings(postgres_server, pg_proxy, s3_server, s3_proxy, tmp_path)
    async with running(settings, dsn) as backend:
        s3 = backend.state.checker.get_service_metrics("s3")
        detailed = await backend.client.get(
            "/api/v1/health/detailed", headers=backend.auth(backend.admin_token)
        )

    assert s3.checks >= 1
    assert (s3.failures, s3.last_error, s3.availability) == (0, None, 100.0)
    entry = detailed.json()["checks"]["s3"]
    ServiceHealth.model_validate(entry)  # the documented answer names the new fields
    assert (entry["status"], entry["failed_checks"], entry["last_error"]) == ("healthy", 0, None)
