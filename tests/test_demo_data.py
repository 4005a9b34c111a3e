"""The demo-user generator: deterministic, varied, and within every profile constraint."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date
from functools import cache

import pytest

from src.resolvers import demo_data
from src.resolvers.demo_data import DemoUser, generate_users
from src.resolvers.profiles import GENDERS, clean_https_url, clean_nickname, clean_tags

REFERENCE = date(2026, 11, 26)
HANDLE = re.compile(r"[A-Za-z0-9_-]{1,32}")
CJK = re.compile(r"[\u3400-\u9fff]")


@cache
def many_users() -> tuple[DemoUser, ...]:
    return tuple(generate_users(5000, seed=42))


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def is_chinese(user: DemoUser) -> bool:
    return CJK.search(user.bio) is not None


def test_same_seed_gives_same_users() -> None:
    assert list(generate_users(300, seed=7)) == list(generate_users(300, seed=7))


def test_different_seeds_give_different_users() -> None:
    first, second = list(generate_users(50, seed=1)), list(generate_users(50, seed=2))
    assert [u.name for u in first] == [u.name for u in second]
    assert sum(a != b for a, b in zip(first, second, strict=True)) >= 45


def test_user_i_does_not_depend_on_start_or_count() -> None:
    everyone = list(generate_users(400, seed=3))
    assert list(generate_users(60, seed=3, start=150)) == everyone[150:210]
    assert list(generate_users(1, seed=3, start=399)) == [everyone[399]]
    assert list(generate_users(0, seed=3, start=10)) == []


def test_default_seed_is_one() -> None:
    assert list(generate_users(20)) == list(generate_users(20, seed=1))


def test_negative_count_or_start_is_rejected() -> None:
    with pytest.raises(ValueError):
        generate_users(-1)
    with pytest.raises(ValueError):
        generate_users(5, start=-1)


def test_global_random_state_is_untouched() -> None:
    random.seed(1234)
    before = random.getstate()
    list(generate_users(100, seed=9))
    assert random.getstate() == before


def test_names_are_unique_handles() -> None:
    names = [u.name for u in many_users()]
    assert len(set(names)) == len(names) == 5000
    assert all(HANDLE.fullmatch(name) for name in names)
    assert names[123] == "demo-000123"
    assert next(generate_users(1, start=1_234_567)).name == "demo-1234567"


def test_users_respect_profile_constraints() -> None:
    for user in many_users():
        assert 1 <= len(user.nickname) <= 30
        assert clean_nickname(user.nickname) == user.nickname
        assert user.gender in GENDERS
        assert 18 <= age_on(user.birth_date, REFERENCE) <= 60
        assert user.city and user.city == user.city.strip()
        assert 0 < len(user.bio) <= 500
        assert user.bio[-1] in "。！!.～"
        assert 2 <= len(user.interests) <= 8
        assert clean_tags(user.interests, "interests", 8) == user.interests
        assert all(len(tag) <= 20 for tag in user.interests)
        assert 0 < len(user.looking_for) <= 200
        assert user.institution_name is None or user.institution_name.strip()
        assert isinstance(user.discoverable, bool)
        assert 0 <= len(user.projects) <= 8


def test_projects_respect_constraints() -> None:
    for user in many_users():
        titles = [p.title for p in user.projects]
        assert len(set(titles)) == len(titles)
        for project in user.projects:
            assert 1 <= len(project.title) <= 100
            assert project.description is None or 0 < len(project.description) <= 2000
            assert project.role is None or project.role.strip()
            assert project.link is None or project.link.startswith("https://")
            assert clean_https_url(project.link, "link") == project.link
            assert len(project.tags) <= 6
            assert clean_tags(project.tags, "tags", 6) == project.tags
            if project.started_on is None:
                assert project.ended_on is None
            else:
                assert date(2015, 1, 1) <= project.started_on <= REFERENCE
                assert project.started_on > user.birth_date
            if project.ended_on is not None:
                assert project.started_on is not None
                assert project.started_on <= project.ended_on <= REFERENCE


def test_language_mix_is_mostly_chinese() -> None:
    users = many_users()
    share = sum(map(is_chinese, users)) / len(users)
    assert 0.6 <= share <= 0.8


def test_each_user_writes_in_one_language() -> None:
    for user in many_users():
        texts = [user.nickname, user.looking_for]
        texts += [p.title for p in user.projects]
        texts += [p.description for p in user.projects if p.description]
        if is_chinese(user):
            assert CJK.search(user.nickname) and CJK.search(user.looking_for)
            assert any(CJK.search(tag) for tag in user.interests)
        else:
            assert not any(CJK.search(text) for text in texts + user.interests)


def test_distributions_look_realistic() -> None:
    users = many_users()
    n = len(users)
    assert 0.10 <= sum(u.institution_name is None for u in users) / n <= 0.20
    assert 0.88 <= sum(u.discoverable for u in users) / n <= 0.96
    assert 0.40 <= sum(len(u.projects) >= 5 for u in users) / n <= 0.60
    assert sum(not u.projects for u in users) > 0
    assert set(Counter(u.gender for u in users)) == set(GENDERS)
    assert {"北京", "上海", "深圳", "杭州", "Shanghai", "Beijing"} <= {u.city for u in users}
    assert len({u.bio for u in users}) > 0.95 * n
    assert len({tag for u in users for tag in u.interests}) >= 80  # both languages
    ages = Counter(age_on(u.birth_date, REFERENCE) for u in users)
    assert min(ages) == 18 and max(ages) >= 58


def test_enough_templates() -> None:
    bio_templates = (
        demo_data.ZH_FULL + demo_data.ZH_INTRO + demo_data.ZH_HOBBY + demo_data.ZH_CLOSING
    )
    bio_templates += demo_data.EN_FULL + demo_data.EN_INTRO + demo_data.EN_HOBBY
    bio_templates += demo_data.EN_CLOSING
    assert len(demo_data.OCCUPATIONS) >= 25
    assert len(demo_data.INTERESTS) >= 40
    assert len(bio_templates) >= 30
    assert len(demo_data.ZH_PROJECTS) + len(demo_data.EN_PROJECTS) >= 20
    assert min(len(demo_data.ZH_PROJECTS), len(demo_data.EN_PROJECTS)) >= 8


def test_natural_language_queries_have_matches() -> None:
    users = many_users()
    assert any("产品经理" in u.bio and "徒步" in u.bio for u in users)
    assert any("designer" in u.bio and "photography" in u.bio for u in users)
    assert any(
        "产品经理" in u.bio and "徒步" in u.interests and u.city in {"上海", "Shanghai"}
        for u in users
    )
    assert any("清华大学" in u.bio and u.institution_name == "清华大学" for u in users)
    assert any("Tsinghua" in u.bio and u.institution_name == "清华大学" for u in users)
    for user in users:  # every bio names the user's city and at least one of their interests
        assert demo_data.CITY_EN.get(user.city, user.city) in user.bio or user.city in user.bio
        assert any(tag in user.bio for tag in user.interests), user.bio


def test_ten_thousand_users_generate_quickly() -> None:
    users = list(generate_users(10_000, seed=5))
    assert len({u.name for u in users}) == 10_000
