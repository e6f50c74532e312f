"""When several worker processes are correct (`--workers`), and each one's share of a bound."""

from __future__ import annotations

from app.cli.workers import single_process_reasons
from app.core.config import Settings
from app.core.models_file import ModelsFile


def test_reasons_name_each_piece_of_unshared_state() -> None:
    local = ModelsFile.model_validate({"models": [{"name": "smollm2", "provider": "local"}]})
    remote = ModelsFile.model_validate(
        {"models": [{"name": "up", "provider": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m"}]}
    )
    shared = Settings(database_url="postgresql+asyncpg://u@h/db", redis_url="redis://h:6379/0", workers=2)
    assert single_process_reasons(shared, remote, tunnel=False) == []
    assert len(single_process_reasons(shared, remote, tunnel=True)) == 1
    [reason] = single_process_reasons(shared, local, tunnel=False)
    assert "smollm2" in reason
    assert len(single_process_reasons(Settings(workers=2), remote, tunnel=False)) == 2
    assert [shared.per_worker(n) for n in (1, 4, 5, 256)] == [1, 2, 3, 128]
