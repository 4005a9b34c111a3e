"""Workload B's inputs: demo profiles as the index sees them, and realistic search prompts.

Profiles come from `generate_users` (the same people `qiaoqiao seed-demo` creates, with the same
user ids); their text is built the way `profile_docs` builds it from the database, and their
payload the way it fills a `ProfilePoint`. Only discoverable users are indexed, as in the API.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

import numpy as np

from bench.harness import ROOT
from src.ai.vector_store import ProfilePoint, SearchFilter
from src.resolvers.calendar import local_day
from src.resolvers.demo_data import DemoUser, generate_users
from src.resolvers.discovery import Criteria, _filter
from src.resolvers.indexing import ProjectText, document_text, normalize_city
from src.seeding import demo_user_id

INSTITUTIONS = ROOT / "migrations" / "data" / "institutions.json"


@dataclass
class Profiles:
    ids: list[uuid.UUID]
    texts: list[str]
    points: list[ProfilePoint]  # vector still empty
    city: np.ndarray  # payload columns for the exact (numpy) search
    gender: np.ndarray
    birth_year: np.ndarray  # -1: unknown


def _aliases() -> dict[str, list[str]]:
    return {i["name"]: i["aliases"] for i in json.loads(INSTITUTIONS.read_text())}


def institution_id(name: str) -> uuid.UUID:
    """A stable stand-in for the institution's row id (only equality matters to filters)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"qiaoqiao:institution:{name}")


def profile_text(user: DemoUser, aliases: dict[str, list[str]]) -> str:
    """The text `indexing.profile_docs` builds, from the generated user instead of its rows."""
    inst = user.institution_name
    return document_text(
        nickname=user.nickname,
        bio=user.bio,
        interests=user.interests,
        looking_for=user.looking_for,
        city=user.city,
        institution=(inst, aliases.get(inst, [])) if inst else None,
        # seed-demo dates project i at now - i days, so newest first is the generated order.
        projects=[ProjectText(p.title, p.role, p.description, p.tags) for p in user.projects],
    )


def build_profiles(n: int, seed: int) -> Profiles:
    """The first `n` discoverable demo users of `seed`."""
    aliases = _aliases()
    users = islice((u for u in generate_users(3 * n + 100, seed) if u.discoverable), n)
    ids, texts, points = [], [], []
    for user in users:
        uid = demo_user_id(user.name)
        ids.append(uid)
        texts.append(profile_text(user, aliases))
        inst = user.institution_name
        points.append(
            ProfilePoint(
                user_id=uid,
                vector=[],
                city=normalize_city(user.city),
                institution_id=institution_id(inst) if inst else None,
                gender=user.gender,
                birth_year=user.birth_date.year,
            )
        )
    return Profiles(
        ids=ids,
        texts=texts,
        points=points,
        city=np.array([p.city or "" for p in points]),
        gender=np.array([p.gender for p in points]),
        birth_year=np.array([p.birth_year or -1 for p in points]),
    )


# What people type into discovery: Chinese and English, roles, hobbies, cities, intentions.
PROMPTS = (
    "喜欢徒步的产品经理",
    "designer who loves photography",
    "上海 读研 找学习搭子",
    "周末一起爬山露营的朋友",
    "会弹吉他的程序员",
    "想找一起跑步的人",
    "在杭州做AI创业的",
    "清华的博士生，研究机器学习",
    "喜欢咖啡和读书的设计师",
    "找个羽毛球搭子",
    "深圳 前端工程师 桌游",
    "北京 看展 话剧",
    "独立开发者，做小程序",
    "爱猫人士，喜欢烘焙",
    "一起学滑雪",
    "投资经理 喜欢品酒",
    "想认识做开源的朋友",
    "成都 美食 火锅 摄影",
    "健身教练 瑜伽",
    "找人一起写播客",
    "数据科学家 喜欢天文",
    "复旦 本科生 剧本杀",
    "a backend engineer into climbing",
    "someone to go hiking with on weekends",
    "PhD student in Beijing who likes jazz",
    "startup founder looking for a cofounder",
    "coffee lover and book reader in Shanghai",
    "UX designer who draws and plays piano",
    "people who like board games in Shenzhen",
    "machine learning engineer interested in open source",
    "runner training for a marathon",
    "photographer who travels a lot",
    "looking for a study buddy for the GRE",
    "indie developer building mobile apps",
    "someone into cycling and city walks",
    "a doctor who likes classical music",
    "lawyer who loves diving and surfing",
    "product manager at ByteDance",
    "anime and video games fan",
    "friends to practice Chinese with",
)
CITIES = ("上海", "北京", "深圳", "杭州", "广州", "成都", "Shanghai", "beijing")
GENDER_CHOICES = ("FEMALE", "MALE")


@dataclass
class Query:
    prompt: str
    criteria: Criteria
    flt: SearchFilter

    @property
    def label(self) -> str:
        c = self.criteria
        bits = [f"city={c.city}" if c.city else "", f"gender={c.gender}" if c.gender else ""]
        if c.min_age or c.max_age:
            bits.append(f"age={c.min_age or ''}-{c.max_age or ''}")
        return ", ".join(b for b in bits if b) or "no filter"


def make_queries(count: int, profiles: Profiles, seed: int, excluded: int = 50) -> list[Query]:
    """`count` prompts, a third to a half with filters, each excluding `excluded` random ids
    (the viewer, blocks, swipes: the API puts them in the vector query's filter)."""
    rng = random.Random(f"discovery-queries:{seed}")
    queries = []
    for i in range(count):
        prompt = PROMPTS[i % len(PROMPTS)]
        kind = rng.random()
        city = gender = None
        ages: tuple[int | None, int | None] = (None, None)
        if kind < 0.2:
            city = rng.choice(CITIES)
        elif kind < 0.3:
            gender = rng.choice(GENDER_CHOICES)
        elif kind < 0.4:
            low = rng.randint(18, 35)
            ages = (low, low + rng.randint(3, 12))
        elif kind < 0.5:
            city, gender = rng.choice(CITIES), rng.choice(GENDER_CHOICES)
            ages = (None, rng.randint(25, 40))
        criteria = Criteria(city=city, gender=gender, min_age=ages[0], max_age=ages[1])
        exclude = frozenset(rng.sample(profiles.ids, min(excluded, len(profiles.ids))))
        queries.append(
            Query(prompt, criteria, _filter(criteria, exclude, local_day(datetime.now(UTC))))
        )
    return queries


def mask(profiles: Profiles, flt: SearchFilter, index: dict[uuid.UUID, int]) -> np.ndarray:
    """Which profiles the filter admits (numpy), as the vector stores evaluate it."""
    keep = np.ones(len(profiles.ids), dtype=bool)
    if flt.city is not None:
        keep &= profiles.city == flt.city
    if flt.gender is not None:
        keep &= profiles.gender == flt.gender
    if flt.institution_id is not None:
        raise NotImplementedError("the query set does not filter by institution")
    known = profiles.birth_year >= 0
    if flt.min_birth_year is not None:
        keep &= known & (profiles.birth_year >= flt.min_birth_year)
    if flt.max_birth_year is not None:
        keep &= known & (profiles.birth_year <= flt.max_birth_year)
    for uid in flt.exclude_ids:
        keep[index[uid]] = False
    return keep


def exact_top(
    vectors: np.ndarray, query: np.ndarray, keep: np.ndarray, ids: list[uuid.UUID], k: int
) -> list[uuid.UUID]:
    """Brute force: cosine (vectors are normalized), best first, ties by user id."""
    scores = vectors @ query
    scores[~keep] = -np.inf
    top = int(min(k, keep.sum()))
    if top == 0:
        return []
    cand = [int(c) for c in np.argpartition(-scores, top - 1)[:top]]
    cand.sort(key=lambda c: (-float(scores[c]), ids[c].int))
    return [ids[c] for c in cand[:top]]
