"""Every problem the services can answer has a Korean text, and a caller that prefers Korean
gets it (the consoles send `Accept-Language: ko`). The walk reads the source with `ast`:
each stable code given to `Problem(...)` — or to a constructor whose code becomes a
problem's or a field error's code — must be in shared/problem_texts.py, unless the call site
gives its own Korean sentence (`ko=`)."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from shared import problems
from shared.problem_texts import FIELD_KO, PROBLEM_KO, prefers_korean, won
from shared.problems import Problem

ROOT = Path(__file__).resolve().parents[3]
# Callable name -> (position of its code argument, catalogues the code must be in).
CODE_CARRIERS: dict[str, tuple[int, tuple[dict[str, object], ...]]] = {
    "Problem": (1, (PROBLEM_KO,)),
    "PatchRefusedError": (1, (PROBLEM_KO,)),
    "invalid": (2, (PROBLEM_KO,)),
    "Violation": (2, (PROBLEM_KO, FIELD_KO)),
    "FieldError": (2, (FIELD_KO,)),
}


def _calls() -> list[tuple[str, int, str, ast.Call]]:
    found = []
    for base in ("services", "shared", "tools"):
        for path in sorted((ROOT / base).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in CODE_CARRIERS:
                    found.append((str(path.relative_to(ROOT)), node.lineno, name, node))
    return found


def _code_of(name: str, call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "code":
            return keyword.value
    index = CODE_CARRIERS[name][0]
    return call.args[index] if len(call.args) > index else None


def test_every_problem_code_in_the_code_has_a_korean_text() -> None:
    missing = []
    checked = 0
    for where, line, name, call in _calls():
        if any(k.arg == "ko" for k in call.keywords):
            continue
        code = _code_of(name, call)
        if isinstance(code, ast.Constant) and isinstance(code.value, str):
            checked += 1
            catalogues = CODE_CARRIERS[name][1]
            if not all(code.value in catalogue for catalogue in catalogues):
                missing.append(f"{where}:{line} {name}(... {code.value!r} ...)")
        elif name == "Problem" and code is not None:
            # A code passed through (exc.code, violations[0].code, a parameter): its origins
            # are the carriers above, checked where they are written.
            assert isinstance(code, ast.Name | ast.Attribute), f"{where}:{line}"
    assert checked > 40, "the walk found too few problems: is it reading the code?"
    assert not missing, "no Korean text for:\n" + "\n".join(missing)


def test_accept_language_picks_korean_only_when_ranked_first() -> None:
    assert prefers_korean("ko")
    assert prefers_korean("ko-KR,ko;q=0.9,en-US;q=0.8")
    assert prefers_korean("en;q=0.5, ko")
    assert not prefers_korean(None) and not prefers_korean("")
    assert not prefers_korean("en-US,en;q=0.9,ko;q=0.8")
    assert not prefers_korean("ko;q=0")
    assert won(21_284_800) == "21,284,800원"


def _app() -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/attendance")
    async def attendance() -> None:
        raise Problem(409, "attendance_not_open", "attendance opens when the shift starts")

    @app.get("/budget")
    async def budget() -> None:
        raise Problem(
            409, "budget_insufficient", "requested 21284800 won", ko=f"{won(21_284_800)} 부족"
        )

    @app.get("/typed")
    async def typed(n: int) -> int:
        return n

    return app


@pytest.mark.parametrize("accept", ["ko", "ko-KR,ko;q=0.9"])
async def test_a_korean_caller_reads_korean_and_keeps_the_stable_code(accept: str) -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        got = await client.get("/attendance", headers={"accept-language": accept})
        body = got.json()
        assert got.headers["content-language"] == "ko"
        assert body["code"] == "attendance_not_open"
        assert body["detail"] == PROBLEM_KO["attendance_not_open"][1]
        assert body["detail_en"] == "attendance opens when the shift starts"
        precise = (await client.get("/budget", headers={"accept-language": accept})).json()
        assert precise["detail"] == "21,284,800원 부족"
        field = (await client.get("/typed?n=x", headers={"accept-language": accept})).json()
        assert field["errors"][0]["message"] == FIELD_KO["int_parsing"]
        assert field["errors"][0]["message_en"]
        english = (await client.get("/attendance")).json()
        assert english["detail"] == "attendance opens when the shift starts"
        assert "detail_en" not in english
