"""Realistic, varied demo users generated deterministically from a seed.

A pure generator (standard library only, no database, no I/O): user `i` of a seed is always the
same, whatever `count` and `start` are asked for, because each user draws from its own
`random.Random` seeded with `(seed, i)`. About 70% of users write in Chinese and 30% in English;
bios mention an occupation, an institution or city and some interests, so that natural-language
search ("喜欢徒步的产品经理 in Shanghai", "a designer who loves photography") has real matches.
Project links use reserved example domains, so they never point at a real person's account.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

REFERENCE_DATE = date(2026, 11, 26)  # ages are 18..60 on this day; projects end by it
PROJECTS_FROM = date(2015, 1, 1)
GENDERS = ("MALE", "FEMALE", "OTHER", "UNDISCLOSED")
GENDER_WEIGHTS = (46, 46, 2, 6)

# The tables below are laid out by hand, a few entries a line.
# fmt: off
# (Chinese, English, kind, youngest, oldest). Kind: "uni" people work or study at a university,
# "co" people work at a company, "free" people may mention the university they graduated from.
OCCUPATIONS = (
    ("本科生", "an undergrad", "uni", 18, 23), ("研究生", "a graduate student", "uni", 21, 30),
    ("博士生", "a PhD student", "uni", 23, 35), ("博士后", "a postdoc", "uni", 27, 38),
    ("讲师", "a lecturer", "uni", 28, 60), ("研究员", "a research fellow", "uni", 26, 60),
    ("产品经理", "a product manager", "co", 22, 50),
    ("前端工程师", "a frontend engineer", "co", 21, 45),
    ("后端工程师", "a backend engineer", "co", 21, 48),
    ("算法工程师", "a machine learning engineer", "co", 23, 45),
    ("数据科学家", "a data scientist", "co", 23, 50), ("设计师", "a designer", "co", 21, 50),
    ("交互设计师", "a UX designer", "co", 22, 48), ("运营", "an operations manager", "co", 21, 45),
    ("市场经理", "a marketing manager", "co", 23, 55),
    ("投资经理", "an investment analyst", "co", 23, 50),
    ("招聘经理", "a recruiter", "co", 22, 55), ("测试工程师", "a QA engineer", "co", 21, 50),
    ("咨询顾问", "a consultant", "co", 22, 55), ("销售经理", "a sales manager", "co", 22, 60),
    ("财务分析师", "a financial analyst", "co", 22, 55),
    ("摄影师", "a photographer", "free", 19, 60),
    ("自由插画师", "a freelance illustrator", "free", 19, 50),
    ("独立开发者", "an indie developer", "free", 20, 55),
    ("创业者", "a startup founder", "free", 22, 60),
    ("咖啡师", "a barista", "free", 18, 40), ("健身教练", "a fitness coach", "free", 20, 50),
    ("律师", "a lawyer", "free", 24, 60), ("医生", "a doctor", "free", 25, 60),
    ("建筑师", "an architect", "free", 24, 60), ("记者", "a journalist", "free", 22, 60),
)
NO_INSTITUTION_CHANCE = {"uni": 0.07, "co": 0.07, "free": 0.35}  # about 15% overall

# (Chinese name, English name, home city); the Chinese name is the one stored on the profile.
UNIVERSITIES = (
    ("清华大学", "Tsinghua University", "北京"), ("北京大学", "Peking University", "北京"),
    ("复旦大学", "Fudan University", "上海"), ("浙江大学", "Zhejiang University", "杭州"),
    ("上海交通大学", "Shanghai Jiao Tong University", "上海"),
    ("南京大学", "Nanjing University", "南京"),
    ("中国科学技术大学", "USTC", "合肥"), ("武汉大学", "Wuhan University", "武汉"),
    ("中山大学", "Sun Yat-sen University", "广州"), ("同济大学", "Tongji University", "上海"),
    ("香港大学", "HKU", "香港"), ("四川大学", "Sichuan University", "成都"),
    ("西安交通大学", "Xi'an Jiaotong University", "西安"), ("南方科技大学", "SUSTech", "深圳"),
)
COMPANIES = (
    ("腾讯", "Tencent", "深圳"), ("阿里巴巴", "Alibaba", "杭州"), ("字节跳动", "ByteDance", "北京"),
    ("华为", "Huawei", "深圳"), ("美团", "Meituan", "北京"), ("百度", "Baidu", "北京"),
    ("京东", "JD.com", "北京"), ("小红书", "Xiaohongshu", "上海"), ("网易", "NetEase", "杭州"),
    ("拼多多", "PDD", "上海"), ("大疆", "DJI", "深圳"), ("蚂蚁集团", "Ant Group", "杭州"),
    ("米哈游", "miHoYo", "上海"), ("小米", "Xiaomi", "北京"),
)
# (Chinese, English, weight)
CITIES = (
    ("北京", "Beijing", 16), ("上海", "Shanghai", 16), ("深圳", "Shenzhen", 11),
    ("杭州", "Hangzhou", 9), ("广州", "Guangzhou", 8), ("成都", "Chengdu", 7),
    ("南京", "Nanjing", 5), ("武汉", "Wuhan", 5), ("西安", "Xi'an", 4), ("苏州", "Suzhou", 4),
    ("香港", "Hong Kong", 5), ("重庆", "Chongqing", 3), ("厦门", "Xiamen", 3),
    ("长沙", "Changsha", 2), ("合肥", "Hefei", 2),
)
CITY_EN = {zh: en for zh, en, _ in CITIES}
CITY_WEIGHTS = tuple(weight for *_, weight in CITIES)

# (Chinese, English) interest tags, each at most 20 characters.
INTERESTS = (
    ("徒步", "hiking"), ("摄影", "photography"), ("咖啡", "coffee"), ("爵士乐", "jazz"),
    ("羽毛球", "badminton"), ("桌游", "board games"), ("读书", "reading"), ("露营", "camping"),
    ("AI", "AI"), ("创业", "startups"), ("跑步", "running"), ("游泳", "swimming"),
    ("攀岩", "climbing"), ("滑雪", "skiing"), ("骑行", "cycling"), ("瑜伽", "yoga"),
    ("健身", "fitness"), ("篮球", "basketball"), ("足球", "football"), ("网球", "tennis"),
    ("飞盘", "frisbee"), ("冲浪", "surfing"), ("烘焙", "baking"), ("做饭", "cooking"),
    ("品酒", "wine"), ("喝茶", "tea"), ("电影", "movies"), ("话剧", "theater"),
    ("脱口秀", "stand-up comedy"), ("看展", "art exhibitions"), ("画画", "drawing"),
    ("书法", "calligraphy"), ("吉他", "guitar"), ("钢琴", "piano"), ("唱歌", "singing"),
    ("古典乐", "classical music"), ("独立音乐", "indie music"), ("电子游戏", "video games"),
    ("剧本杀", "murder mysteries"), ("动漫", "anime"), ("旅行", "travel"), ("潜水", "diving"),
    ("猫", "cats"), ("狗", "dogs"), ("播客", "podcasts"), ("开源", "open source"),
    ("编程", "coding"), ("投资理财", "investing"), ("心理学", "psychology"), ("历史", "history"),
    ("写作", "writing"), ("天文", "astronomy"), ("城市漫步", "city walks"), ("逛博物馆", "museums"),
)
POPULAR = {"徒步", "摄影", "咖啡", "读书", "露营", "旅行", "跑步", "电影", "羽毛球", "桌游", "AI"}
INTEREST_WEIGHTS = tuple(3 if zh in POPULAR else 1 for zh, _ in INTERESTS)

# Bios: a one-sentence "full" template, or an intro plus a hobby sentence; then maybe a closing.
ZH_FULL = (
    "坐标{city}，{role}，平时喜欢{i1}和{i2}。",
    "我是{role}，住在{city}，最近迷上了{i1}。",
    "{role}一枚，base{city}，业余爱好是{i1}和{i2}。",
    "在{city}生活的{role}，爱好是{i1}、{i2}和{i3}。",
)
ZH_INTRO = (
    "我是{role}，目前在{city}。",
    "{role}，坐标{city}。",
    "{city}的{role}，工作日认真搬砖。",
    "你好呀，我是在{city}的{role}。",
)
ZH_HOBBY = (
    "喜欢{i1}和{i2}。",
    "最近沉迷{i1}。",
    "业余爱好是{i1}、{i2}和{i3}。",
    "{i1}爱好者，也在学{i2}。",
    "对{i1}和{i2}都很感兴趣。",
)
ZH_CLOSING = ("欢迎来聊天！", "希望在这里认识有趣的人。", "慢热，但很好聊。", "周末可以约饭～")
EN_FULL = (
    "{A_role} in {city} who loves {i1} and {i2}.",
    "{A_role} living in {city}, into {i1}, {i2} and {i3}.",
    "I'm {a_role} in {city} and spend most weekends on {i1}.",
    "{A_role} based in {city}; happiest when it involves {i1} or {i2}.",
)
EN_INTRO = (
    "I'm {a_role} based in {city}.",
    "{A_role}, currently in {city}.",
    "Hi! {A_role} living in {city}.",
    "Recently moved to {city}, working as {a_role}.",
)
EN_HOBBY = (
    "I love {i1} and {i2}.",
    "Big fan of {i1}.",
    "Into {i1}, {i2} and {i3}.",
    "Currently obsessed with {i1}.",
)
EN_CLOSING = ("Always happy to grab a coffee.", "Say hi!", "Open to new ideas and new friends.")

ZH_LOOKING_FOR = (
    "找{i}搭子", "想认识同样喜欢{i}的朋友", "寻找靠谱的合伙人，一起做点有意思的事",
    "找一起自习的学习伙伴", "交朋友，随缘", "想认识{city}的新朋友", "找技术合伙人",
    "找一起参加黑客马拉松的队友", "找个饭搭子", "找一起备考的研友", "想找行业前辈聊聊职业发展",
)
EN_LOOKING_FOR = (
    "Looking for a co-founder", "Looking for a {i} buddy", "Looking for friends in {city}",
    "Looking for a study partner", "Hoping to meet people who are into {i}",
    "Open to coffee chats and new friends", "Looking for teammates for a hackathon",
    "Looking for a language exchange partner", "Looking for mentors in tech",
)

ZH_NICK_PREFIXES = ("小", "阿", "大")
ZH_NICK_CHARS = ("鹿", "鱼", "橘", "桃", "熊", "白", "满", "七", "安", "乐", "叶", "舟")
ZH_NICK_WHOLE = ("桃桃", "可可", "糖糖", "豆豆", "圆圆", "乐乐", "团子", "阿狸", "一一", "木木")
ZH_NICK_ADJ = ("爱睡觉", "不吃香菜", "会发光", "慢吞吞", "每天都很困", "想去海边")
ZH_NICK_NOUN = ("猫", "企鹅", "土豆", "西瓜", "柠檬", "橙子", "小狗", "鲸鱼")
EN_FIRST = {
    "MALE": ("Leo", "Kevin", "Ethan", "Daniel", "Ryan", "Jason", "Oscar", "Lucas", "Henry"),
    "FEMALE": ("Mia", "Grace", "Chloe", "Sophie", "Olivia", "Emma", "Lily", "Nina", "Ivy", "Zoe"),
    "OTHER": ("Alex", "Sam", "Jamie", "Robin", "Charlie", "Kai"),
}
EN_LAST = (
    "Chen", "Wang", "Li", "Zhang", "Liu", "Lin", "Huang", "Brown", "Martin", "Garcia", "Kim",
)

# (title, slug, description, tags); "{city}" is filled with the user's city.
ZH_PROJECTS = (
    ("校园二手交易小程序", "campus-market",
     "面向在校生的二手交易平台，支持闲置发布、聊天和线下自提。", ("小程序", "校园", "电商")),
    ("{city}咖啡地图", "coffee-map",
     "收集了{city}两百多家独立咖啡馆，按口味和环境打标签。", ("地图", "咖啡", "小程序")),
    ("读书会打卡工具", "reading-club",
     "每周一本书的线上读书会，带打卡和笔记分享。", ("社群", "读书")),
    ("基于大模型的简历助手", "resume-copilot",
     "用大模型帮应届生改简历、模拟面试。", ("AI", "LLM", "Python")),
    ("徒步路线推荐系统", "trail-recommender",
     "根据难度、季节和交通推荐{city}周边的徒步路线。", ("推荐系统", "户外", "数据")),
    ("宠物领养信息平台", "pet-adopt",
     "和本地救助站合作，发布待领养的猫狗信息。", ("公益", "小程序")),
    ("实验室设备预约系统", "lab-booking",
     "替代纸质登记表的设备预约系统，课题组三十多人在用。", ("校园", "Django", "工具")),
    ("医学影像分割研究", "med-seg",
     "用深度学习做 CT 影像中的器官分割，论文在投。", ("深度学习", "医学", "论文")),
    ("摄影集《城市角落》", "city-corners",
     "两年间在{city}街头拍摄的黑白照片合集。", ("摄影", "出版")),
    ("羽毛球约场小程序", "badminton-booking",
     "帮球友拼场、AA 付款和记录比分。", ("小程序", "运动")),
    ("开源中文分词库", "zh-tokenizer",
     "轻量级中文分词库，纯 Python 实现，在 GitHub 上有几百个 star。", ("开源", "NLP", "Python")),
    ("业务数据看板", "data-dashboard",
     "为业务团队搭建的数据看板，把写周报的时间从半天缩短到十分钟。", ("数据可视化", "SQL")),
    ("播客《下班以后》", "after-work-podcast",
     "和朋友一起做的职场播客，已经更新了五十多期。", ("播客", "内容")),
)
EN_PROJECTS = (
    ("Open-source vector search benchmark", "vector-bench",
     "Reproducible benchmarks of approximate nearest-neighbour libraries on real embeddings.",
     ("open source", "benchmark", "Rust")),
    ("Habit tracker mini program", "habit-tracker",
     "A tiny WeChat mini program that nudges you to keep daily streaks with friends.",
     ("mini program", "productivity")),
    ("{city} street food guide", "street-food-guide",
     "A crowd-sourced map of late-night snacks across {city}.", ("food", "maps")),
    ("Climbing gym crowd predictor", "crowd-predictor",
     "Predicts how busy local climbing gyms are from check-in data.", ("ML", "Python", "climbing")),
    ("Portfolio site redesign", "portfolio",
     "Redesigned my personal site with a focus on accessibility and speed.", ("design", "Figma")),
    ("Thesis: GNNs for drug discovery", "gnn-drugs",
     "Master's thesis on molecular property prediction with graph neural networks.",
     ("research", "GNN", "PyTorch")),
    ("Hackathon: AI travel planner", "travel-planner",
     "Built in 48 hours: an assistant that plans weekend trips from a short chat.",
     ("hackathon", "LLM", "travel")),
    ("Language exchange meetup", "lang-exchange",
     "A monthly Chinese-English exchange night in {city} with 40+ regulars.",
     ("community", "events")),
    ("Indie game: Tea House Tycoon", "tea-house-tycoon",
     "A cozy management game about running a teahouse, made in Godot.", ("game dev", "Godot")),
    ("Analytics pipeline migration", "analytics-migration",
     "Moved the team's nightly batch jobs to a streaming pipeline.", ("data", "Kafka", "SQL")),
    ("Photo zine: Night Shift", "night-shift-zine",
     "Night-time portraits of {city}'s delivery riders, printed as a small zine.",
     ("photography", "print")),
)
ZH_PROJECT_TAILS = ("目前还在迭代中。", "上线三个月用户过千。", "拿过比赛二等奖。", "欢迎提建议。")
EN_PROJECT_TAILS = (
    "Still a work in progress.", "Used by a few hundred people.",
    "Won second place at a local hackathon.", "Feedback welcome.",
)
ZH_ROLES = ("负责人", "前端", "后端", "设计", "产品", "算法", "独立开发", "联合创始人", "运营")
EN_ROLES = ("Lead", "Frontend", "Backend", "Designer", "PM", "Maintainer", "Researcher", "Founder")
ZH_EXTRA_TAGS = ("Python", "React", "Vue", "Go", "小程序", "开源", "数据", "设计", "社群", "AI")
EN_EXTRA_TAGS = ("Python", "React", "TypeScript", "Go", "open source", "data", "design", "AI")

# fmt: on


@dataclass(frozen=True)
class DemoProject:
    title: str
    description: str | None
    role: str | None
    link: str | None
    tags: list[str]
    started_on: date | None
    ended_on: date | None


@dataclass(frozen=True)
class DemoUser:
    name: str
    nickname: str
    gender: str
    birth_date: date
    city: str
    bio: str
    interests: list[str]
    looking_for: str
    institution_name: str | None
    discoverable: bool
    projects: list[DemoProject]


def generate_users(count: int, seed: int = 1, start: int = 0) -> Iterator[DemoUser]:
    """Users number start .. start+count-1; user i is the same whatever count/start are used."""
    if count < 0 or start < 0:
        raise ValueError("count and start must not be negative")
    return (_make_user(seed, i) for i in range(start, start + count))


def _make_user(seed: int, i: int) -> DemoUser:
    rng = random.Random(f"{seed}:{i}")  # noqa: S311 — demo data, not security
    zh = rng.random() < 0.7
    gender = rng.choices(GENDERS, weights=GENDER_WEIGHTS)[0]
    job_zh, job_en, kind, youngest, oldest = rng.choice(OCCUPATIONS)
    birth_date = _birth_date(rng, youngest, oldest)

    institution = None
    if rng.random() >= NO_INSTITUTION_CHANCE[kind]:
        institution = rng.choice(COMPANIES if kind == "co" else UNIVERSITIES)
    home_city_chance = {"uni": 0.9, "co": 0.6, "free": 0.3}[kind]
    if institution and rng.random() < home_city_chance:  # people mostly live where they work
        city_zh = institution[2]
    else:
        city_zh = rng.choices(CITIES, weights=CITY_WEIGHTS)[0][0]
    city_en = CITY_EN[city_zh]

    pairs: list[tuple[str, str]] = []
    for _ in range(rng.choice((2, 3, 3, 4, 4, 5, 5, 6, 7, 8))):  # popular interests more often
        while (pair := rng.choices(INTERESTS, weights=INTEREST_WEIGHTS)[0]) in pairs:
            pass
        pairs.append(pair)
    interests = [pair[0] if zh else pair[1] for pair in pairs]
    role = _role(zh, job_zh if zh else job_en, kind, institution)
    if zh:
        fields = {"role": role, "city": city_zh}
    else:
        fields = {"a_role": role, "A_role": role[0].upper() + role[1:], "city": city_en}
    picked = rng.sample(interests, min(3, len(interests)))
    fields.update(i1=picked[0], i2=picked[1], i3=picked[-1])

    return DemoUser(
        name=f"demo-{i:06d}",
        nickname=_nickname(rng, zh, gender),
        gender=gender,
        birth_date=birth_date,
        city=city_zh if zh or rng.random() < 0.35 else city_en,
        bio=_bio(rng, zh, fields, len(interests)),
        interests=interests,
        looking_for=rng.choice(ZH_LOOKING_FOR if zh else EN_LOOKING_FOR).format(
            i=picked[0], city=fields["city"]
        ),
        institution_name=institution[0] if institution else None,
        discoverable=rng.random() < 0.92,
        projects=_projects(rng, zh, f"demo-{i:06d}", fields["city"], birth_date),
    )


def _role(zh: bool, job: str, kind: str, institution: tuple[str, str, str] | None) -> str:
    """The occupation with where it is done ("腾讯产品经理") or studied ("a lawyer (HKU alum)")."""
    if institution is None:
        return job
    if zh:
        return f"{job}（{institution[0]}毕业）" if kind == "free" else f"{institution[0]}{job}"
    return f"{job} ({institution[1]} alum)" if kind == "free" else f"{job} at {institution[1]}"


def _birth_date(rng: random.Random, youngest: int, oldest: int) -> date:
    """A birthday giving an age in youngest..oldest on REFERENCE_DATE, skewed to the young end."""
    age = min(oldest, int(rng.triangular(youngest, oldest + 1, youngest + (oldest - youngest) / 4)))
    latest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - age)  # turns `age` that day
    earliest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - age - 1) + timedelta(days=1)
    return earliest + timedelta(days=rng.randrange((latest - earliest).days + 1))


def _nickname(rng: random.Random, zh: bool, gender: str) -> str:
    pattern = rng.randrange(4)
    if zh:
        if pattern == 0:
            return rng.choice(ZH_NICK_PREFIXES) + rng.choice(ZH_NICK_CHARS)
        if pattern == 1:
            return rng.choice(ZH_NICK_WHOLE)
        return f"{rng.choice(ZH_NICK_ADJ)}的{rng.choice(ZH_NICK_NOUN)}"
    names = EN_FIRST.get(gender, EN_FIRST["MALE"] + EN_FIRST["FEMALE"] + EN_FIRST["OTHER"])
    first, last = rng.choice(names), rng.choice(EN_LAST)
    return (first, f"{first} {last}", f"{first} {last[0]}.", f"{first}{rng.randrange(10, 100)}")[
        pattern
    ]


def _bio(rng: random.Random, zh: bool, fields: dict[str, str], n_interests: int) -> str:
    def pick(templates: tuple[str, ...]) -> str:
        usable = [t for t in templates if n_interests >= 3 or "{i3}" not in t]
        return rng.choice(usable).format(**fields)

    full, intro, hobby, closing = (
        (ZH_FULL, ZH_INTRO, ZH_HOBBY, ZH_CLOSING)
        if zh
        else (EN_FULL, EN_INTRO, EN_HOBBY, EN_CLOSING)
    )
    sentences = [pick(full)] if rng.random() < 0.4 else [pick(intro), pick(hobby)]
    if rng.random() < 0.4:
        sentences.append(rng.choice(closing))
    return ("" if zh else " ").join(sentences)[:500]


def _projects(
    rng: random.Random, zh: bool, handle: str, city: str, birth_date: date
) -> list[DemoProject]:
    count = rng.randint(5, 8) if rng.random() < 0.5 else rng.choice((0, 0, 1, 1, 2, 2, 3, 4))
    templates = rng.sample(ZH_PROJECTS if zh else EN_PROJECTS, count)
    roles, tails, extras = (
        (ZH_ROLES, ZH_PROJECT_TAILS, ZH_EXTRA_TAGS)
        if zh
        else (EN_ROLES, EN_PROJECT_TAILS, EN_EXTRA_TAGS)
    )
    earliest = max(PROJECTS_FROM, birth_date + timedelta(days=16 * 365 + 4))
    projects = []
    for title, slug, description, base_tags in templates:
        text: str | None = None
        if rng.random() < 0.8:
            text = description.format(city=city)
            if rng.random() < 0.4:
                text += ("" if zh else " ") + rng.choice(tails)
        link = None
        if rng.random() < 0.6:
            link = rng.choice(
                (f"https://example.com/{handle}/{slug}", f"https://{slug}.example.org")
            )
        tags: list[str] = []
        for tag in (*rng.sample(base_tags, len(base_tags)), *rng.sample(extras, 3)):
            if tag.casefold() not in {t.casefold() for t in tags}:
                tags.append(tag)
        started: date | None = None
        ended: date | None = None
        if rng.random() < 0.9:
            started = earliest + timedelta(days=rng.randrange((REFERENCE_DATE - earliest).days + 1))
            if rng.random() < 0.7:
                ended = min(REFERENCE_DATE, started + timedelta(days=rng.randint(14, 900)))
        projects.append(
            DemoProject(
                title=title.format(city=city)[:100],
                description=text,
                role=rng.choice(roles) if rng.random() < 0.85 else None,
                link=link,
                tags=tags[: rng.randint(0, 6)],
                started_on=started,
                ended_on=ended,
            )
        )
    return projects


def parallel_sentences(count: int = 400, seed: int = 7) -> list[tuple[str, str]]:
    """(Chinese, English) sentences saying the same thing about a person, from the tables above:
    the parallel corpus the language-neutral vector transform is fitted on (src/ai/neutral.py).
    Deterministic by `seed`; it never sees the labelled relevance set it is judged on."""
    rng = random.Random(f"parallel:{seed}")  # noqa: S311 — calibration text, not security
    pairs = []
    for _ in range(count):
        job_zh, job_en, *_ = rng.choice(OCCUPATIONS)
        city_zh, city_en, _ = rng.choice(CITIES)
        (z1, e1), (z2, e2), (z3, e3) = rng.sample(INTERESTS, 3)
        bare = job_en.split(" ", 1)[1]  # "a product manager" -> "product manager"
        capital = job_en[0].upper() + job_en[1:]
        pairs.append(
            rng.choice(
                (
                    (f"坐标{city_zh}，{job_zh}，平时喜欢{z1}和{z2}。",
                     f"{capital} in {city_en} who loves {e1} and {e2}."),
                    (f"我是{job_zh}，住在{city_zh}，最近迷上了{z1}。",
                     f"I'm {job_en} living in {city_en}, recently into {e1}."),
                    (f"在{city_zh}生活的{job_zh}，爱好是{z1}、{z2}和{z3}。",
                     f"{capital} living in {city_en}, into {e1}, {e2} and {e3}."),
                    (f"{job_zh}，喜欢{z1}", f"{bare} who likes {e1}"),
                )
            )
        )  # fmt: skip
    return pairs
