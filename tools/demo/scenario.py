"""The demo month as a plan: facilities, postings, citizens and what each citizen does.

Pure and deterministic: the same seed and month give the same plan. Modelled on the pilot
(BRIEF §1): 21 facilities of the real kinds across Gwangsan-gu's dongs, a few hundred
citizens with varied dongs, ages and checks, about sixty shifts in four weeks, among them
a rush (many more applicants than seats), a draw, a shift the facility cancels, regulars
who work enough to reach the monthly cap, and shifts the budget cannot carry.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from shared.gwangsan import GWANGSAN_DONGS
from shared.seoul import SEOUL

SEED_DEFAULT = 20220701  # the pilot's launch month, as a number

DONGS: tuple[str, ...] = GWANGSAN_DONGS
OUTSIDE_DONGS: tuple[str, ...] = ("치평동", "봉선동", "용봉동")  # Gwangju, not Gwangsan-gu

Kind = Literal["children_centre", "small_library", "welfare_centre", "senior_centre"]
Role = Literal["general", "regular", "rush", "draw", "cancel", "over_budget"]
CitizenKind = Literal["general", "regular", "rush"]
Standing = Literal["eligible", "outside", "under_age", "stale_verification", "no_check"]

_FACILITY_NAMES: dict[Kind, tuple[str, ...]] = {
    "children_centre": ("지역아동센터", "꿈나무 지역아동센터", "햇살 지역아동센터",
                        "늘푸른 지역아동센터", "새싹 지역아동센터", "무지개 지역아동센터"),
    "small_library": ("작은도서관", "마을 작은도서관", "책마루 작은도서관", "한울 작은도서관",
                      "도란도란 작은도서관"),
    "welfare_centre": ("종합사회복지관", "장애인복지관", "노인복지관", "사회복지관", "가족복지관"),
    "senior_centre": ("경로당", "마을 경로당", "효도 경로당", "장수 경로당", "으뜸 경로당"),
}  # fmt: skip
_TITLES: dict[Kind, tuple[str, ...]] = {
    "children_centre": ("방과후 학습 도우미", "아동 급식 보조", "독서 지도 보조", "놀이 활동 보조"),
    "small_library": ("책 정리 도우미", "그림책 읽어주기", "서가 정리와 대출 보조",
                      "독서 모임 진행 보조"),
    "welfare_centre": ("배식 봉사 보조", "프로그램 진행 보조", "어르신 말벗", "행사 준비 보조"),
    "senior_centre": ("경로당 점심 배식 도우미", "어르신 건강체조 보조", "경로당 청소와 정리"),
}  # fmt: skip
_KINDS: tuple[Kind, ...] = ("children_centre", "small_library", "welfare_centre", "senior_centre")


@dataclass(frozen=True)
class Size:
    general_citizens: int
    rush_citizens: int
    regulars: int
    general_postings: int
    rush_capacity: int
    applications_per_citizen_max: int
    withdrawals: int


SIZES: dict[str, Size] = {
    "full": Size(236, 60, 2, 40, 10, 4, 14),
    "small": Size(40, 16, 1, 10, 5, 3, 4),
}


@dataclass(frozen=True)
class FacilityPlan:
    name: str
    kind: Kind
    dong: str

    @property
    def requires_child_safety_check(self) -> bool:
        return self.kind == "children_centre"


@dataclass(frozen=True)
class PostingPlan:
    key: str
    facility: int
    title: str
    role: Role
    starts_at: datetime
    minutes: int
    capacity: int
    selection: Literal["first_come", "draw"] = "first_come"
    applications_close_at: datetime | None = None

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.minutes)


@dataclass(frozen=True)
class CitizenPlan:
    key: str
    partner_user_id: str
    kind: CitizenKind
    standing: Standing
    dong: str
    neighbourhood_verified_at: datetime
    birth_date: date
    child_safety_check: bool
    applies_to: tuple[str, ...]  # posting keys, in the order the citizen applies


@dataclass
class Plan:
    seed: int
    size_name: str
    month_start: datetime  # the first instant of the month played (Seoul midnight, in UTC)
    facilities: list[FacilityPlan]
    postings: list[PostingPlan]
    citizens: list[CitizenPlan]
    withdrawals: list[tuple[str, str]] = field(default_factory=list)  # (citizen, posting)
    # Citizens who never come (the year demo's strikes and suspensions); none in the month.
    flaky: frozenset[str] = frozenset()

    @property
    def period(self) -> str:
        return self.month_start.astimezone(SEOUL).strftime("%Y-%m")

    @property
    def fiscal_year(self) -> int:
        return self.month_start.astimezone(SEOUL).year

    def posting(self, key: str) -> PostingPlan:
        return next(p for p in self.postings if p.key == key)

    def of_role(self, role: Role) -> list[PostingPlan]:
        return [p for p in self.postings if p.role == role]


def month_to_play(now: datetime) -> datetime:
    """The first Seoul month that starts at least two days after `now` (applications are
    taken before it starts), as a UTC instant."""
    local = now.astimezone(SEOUL)
    year, month = local.year, local.month
    while True:
        month += 1
        if month == 13:
            year, month = year + 1, 1
        start = datetime(year, month, 1, tzinfo=SEOUL)
        if start - local >= timedelta(days=2):
            return start.astimezone(UTC)


def outcome_roll(seed: int, *parts: str) -> float:
    """A number in [0, 1) fixed by the seed and the names of what it decides."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _at(month_start: datetime, day: int, hour: int, minute: int = 0) -> datetime:
    local = month_start.astimezone(SEOUL)
    return datetime(local.year, local.month, day, hour, minute, tzinfo=SEOUL).astimezone(UTC)


def make_plan(seed: int, now: datetime, size_name: str = "full") -> Plan:
    size = SIZES[size_name]
    rng = random.Random(seed)
    month_start = month_to_play(now)
    # Partner ids are new for each play (a replay after a failed run must not meet the
    # citizens of that run), fixed by the seed and the clock's minute.
    tag = f"{month_start.astimezone(SEOUL):%Y%m}{int(now.timestamp()) // 60 % 10**6:06d}"

    # 21 facilities: every kind, spread over the dongs.
    facilities: list[FacilityPlan] = []
    dongs = list(DONGS)
    rng.shuffle(dongs)
    for i in range(21):
        kind = _KINDS[i % len(_KINDS)]
        dong = dongs[i]
        facilities.append(FacilityPlan(f"{dong} {rng.choice(_FACILITY_NAMES[kind])}", kind, dong))
    senior = next(i for i, f in enumerate(facilities) if f.kind == "senior_centre")
    library = next(i for i, f in enumerate(facilities) if f.kind == "small_library")
    welfare = next(i for i, f in enumerate(facilities) if f.kind == "welfare_centre")

    postings: list[PostingPlan] = []

    def add(
        role: Role, facility: int, day: int, hour: int, minutes: int, capacity: int, **kw: object
    ) -> PostingPlan:
        kind = facilities[facility].kind
        p = PostingPlan(
            key=f"P{len(postings) + 1:02d}",
            facility=facility,
            title=str(kw.pop("title", rng.choice(_TITLES[kind]))),
            role=role,
            starts_at=_at(month_start, day, hour),
            minutes=minutes,
            capacity=capacity,
            **kw,  # type: ignore[arg-type]
        )
        postings.append(p)
        return p

    # The regulars' series: lunch at a senior centre, Mon/Wed/Fri-like, 4 h, four weeks.
    for week in range(4):
        for weekday in (0, 2, 4):
            add("regular", senior, 1 + week * 7 + weekday, 10, 240, size.regulars,
                title="경로당 점심 배식 도우미 (정기)")  # fmt: skip
    for _ in range(size.general_postings):
        add(
            "general",
            rng.randrange(21),
            rng.randint(1, 28),
            rng.choice((9, 10, 13, 14, 15, 18)),
            rng.choice((60, 90, 120, 120, 180, 240)),
            rng.randint(2, 6),
        )
    add("rush", library, 10, 14, 120, size.rush_capacity, title="여름방학 그림책 축제 진행 보조")
    close_at = month_start - timedelta(hours=1)
    for day in (12, 19):
        add("draw", welfare, day, 13, 180, 3, title="명절 나눔 행사 준비 (추첨)",
            selection="draw", applications_close_at=close_at)  # fmt: skip
    add("cancel", rng.randrange(21), 16, 10, 120, 4, title="마을 환경 정비 (우천 취소 예정)")
    # Shifts the remaining budget cannot carry: submitted after all the others are funded.
    add("over_budget", welfare, 24, 9, 480, 80, title="대규모 김장 나눔 행사")
    add("over_budget", senior, 25, 9, 480, 60, title="연말 대청소 행사")

    # Citizens.
    month_local = month_start.astimezone(SEOUL)
    citizens: list[CitizenPlan] = []

    def birth(age_years: int) -> date:
        return date(month_local.year - age_years, rng.randint(1, 12), rng.randint(1, 28))

    def citizen(kind: CitizenKind, standing: Standing, applies: tuple[str, ...]) -> None:
        index = len(citizens) + 1
        dong = rng.choice(OUTSIDE_DONGS) if standing == "outside" else rng.choice(DONGS)
        verified_days = (
            rng.randint(400, 700) if standing == "stale_verification" else rng.randint(5, 300)
        )
        age = rng.randint(16, 18) if standing == "under_age" else rng.randint(20, 78)
        citizens.append(
            CitizenPlan(
                key=f"C{index:03d}",
                partner_user_id=f"karrot_demo{seed % 100000}_{tag}_{index:04d}",
                kind=kind,
                standing=standing,
                dong=dong,
                neighbourhood_verified_at=month_start - timedelta(days=verified_days),
                birth_date=birth(age),
                child_safety_check=standing != "no_check" and rng.random() < 0.8,
                applies_to=applies,
            )
        )

    regular_keys = tuple(p.key for p in postings if p.role == "regular")
    for _ in range(size.regulars):
        citizen("regular", "eligible", regular_keys)
    rush_key = next(p.key for p in postings if p.role == "rush")
    for _ in range(size.rush_citizens):
        citizen("rush", "eligible", (rush_key,))
    open_keys = [p.key for p in postings if p.role in ("general", "draw", "cancel")]
    standings: tuple[Standing, ...] = ("outside", "under_age", "stale_verification", "no_check")
    for i in range(size.general_citizens):
        standing: Standing = standings[i % 4] if rng.random() < 0.14 else "eligible"
        count = rng.randint(1, size.applications_per_citizen_max)
        citizen("general", standing, tuple(rng.sample(open_keys, count)))

    # Some citizens will withdraw the first confirmed booking they get (planned here, played
    # when it exists): early, so no strike, and the waitlist's head is promoted.
    withdrawers = rng.sample([c for c in citizens if c.kind == "general"], size.withdrawals)
    withdrawals = [(c.key, c.applies_to[0]) for c in withdrawers]
    return Plan(seed, size_name, month_start, facilities, postings, citizens, withdrawals)
