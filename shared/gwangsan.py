"""Facts about Gwangsan-gu (광산구, Gwangju) that every service and tool uses, each with
its source. Settings take their defaults from here and stay overridable by environment."""

from __future__ import annotations

# The 21 administrative dongs (행정동) of Gwangsan-gu. Source: BRIEF §5, matching the
# district office's list of 행정동 (gwangsan.go.kr, 2024). A facility must be in one of
# them (registry FACILITY_DONGS) and a citizen's verified neighbourhood must be one of
# them (matcher ELIGIBLE_DONGS).
GWANGSAN_DONGS: tuple[str, ...] = (
    "송정1동",
    "송정2동",
    "도산동",
    "신흥동",
    "어룡동",
    "우산동",
    "월곡1동",
    "월곡2동",
    "비아동",
    "첨단1동",
    "첨단2동",
    "신가동",
    "운남동",
    "수완동",
    "하남동",
    "임곡동",
    "동곡동",
    "평동",
    "삼도동",
    "본량동",
    "신창동",
)
