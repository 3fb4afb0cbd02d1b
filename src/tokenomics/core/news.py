"""News rules, pure.

Syndicated news: the same story (headline and symbols, wire decorations aside) from several sources
within a short window is one story, scored and traded once. Content: a headline that says nothing
(a template, a quote page, "what to watch", no verb of change or claim) is no reason to trade."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta

from tokenomics.core.models import Article, Score

_NOT_WORD = re.compile(r"[\W_]+")


def normalise_headline(headline: str) -> str:
    """Case, Unicode compatibility forms, punctuation and spacing do not make a different story."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", headline).casefold()).strip()


# --- wire decorations ---------------------------------------------------------------------------------
# Agencies and aggregators decorate the same headline: "UPDATE 1-", "BRIEF-", "(Reuters) -", "Breaking:"
# in front; "- Reuters", "| Nasdaq", "(Bloomberg)", "via Benzinga", "..." behind.
_SOURCES = (
    r"reuters|bloomberg(?:\s+news)?|cnbc|nasdaq(?:\.com)?|marketwatch|benzinga|yahoo!?\s*finance|yahoo|seeking\s*alpha"
    r"|(?:the\s+)?wall\s+street\s+journal|wsj|financial\s+times|ft\.com|barron'?s|investing\.com|business\s+insider"
    r"|insider|forbes|fox\s+business|(?:the\s+)?motley\s+fool|fool\.com|zacks(?:\.com)?|thestreet(?:\.com)?|the\s+street"
    r"|associated\s+press|ap|afp|dow\s+jones(?:\s+newswires)?|mt\s+newswires|globe\s*newswire|pr\s*newswire"
    r"|business\s*wire|accesswire|the\s*fly|briefing\.com|live\s+trading\s+news|marketscreener|tipranks|investopedia"
    r"|axios|cnn(?:\s+business)?|bbc(?:\s+news)?|(?:the\s+)?new\s+york\s+times|nyt|the\s+guardian|fxstreet|kitco"
    r"|coindesk|cointelegraph|the\s+block|decrypt|rttnews|proactive\s+investors|simply\s+wall\s+st|gurufocus"
    r"|investor'?s\s+business\s+daily|ibd|morningstar|msn(?:\s+money)?|google\s+news|stocktwits|street\s*insider"
    r"|[\w-]+\.(?:com|net|org|io|co\.uk)"
)
_WIRE_TAG = (
    r"update(?:d)?(?:\s*\d+)?|brief|rpt|refile|corrected|correction|exclusive|wrapup(?:\s*\d+)?|instant\s+view"
    r"|factbox|analysis|breakingviews|timeline|buzz|press\s+digest|hot\s+stocks|market\s+talk"
)
_WIRE_PREFIX = re.compile(
    rf"^\s*(?:(?:{_WIRE_TAG})\s*[-:]+\s*"  # UPDATE 1-, BRIEF-, RPT-
    r"|(?:breaking(?:\s+news)?|just\s+in|developing|alert|flash|urgent|live|watch|video|exclusive|update)\s*[:|]\s*"
    rf"|(?:[A-Z][A-Za-z .,]{{0,40}}?(?:,\s*\w+\.?\s*\d{{1,2}})?\s*)?\((?:{_SOURCES})\)\s*[-–—:]+\s*)",
    re.I,
)
_WIRE_SUFFIX = re.compile(
    rf"(?:\s*[-–—|:]+\s*(?:{_SOURCES})|\s*\((?:{_SOURCES})\)|\s+via\s+@?(?:{_SOURCES})"
    r"|\s*[\[(](?:updated?|video|audio|podcast|photos?|corrected|correction|\d+)[\])]|\s*(?:\.{2,}|…))\s*$",
    re.I,
)


def strip_wire(headline: str) -> str:
    """The headline without wire prefixes and suffixes (agency tags, datelines, source tails); a headline
    that is nothing but a decoration is returned as it is."""
    text = headline.strip()
    while True:
        out = _WIRE_SUFFIX.sub("", _WIRE_PREFIX.sub("", text, count=1), count=1).strip()
        if out == text or not _NOT_WORD.sub("", out):
            return text
        text = out


def story_key(headline: str, symbols: Iterable[str]) -> str:
    return f"{normalise_headline(strip_wire(headline))}|{','.join(sorted(set(symbols)))}"


def find_syndicated(new: Iterable[Article], originals: Iterable[tuple[str, str, datetime]],
                    window: timedelta) -> dict[str, str]:
    """Which new articles repeat a story already seen: {copy id: id of the first copy}.

    `originals` are (id, story_key, created_at) of stored articles that are not copies themselves. A new
    article repeats a story when an original, or an earlier new article (by created_at, then id) that is
    not a copy, has the same key and was created within `window` of it. A zero window finds none.
    """
    if window <= timedelta(0):
        return {}
    seen: dict[str, list[tuple[datetime, str]]] = {}
    for aid, key, created in originals:
        seen.setdefault(key, []).append((created, aid))
    copies: dict[str, str] = {}
    for a in sorted(new, key=lambda a: (a.created_at, a.id)):
        key = story_key(a.headline, a.symbols)
        near = [(c, aid) for c, aid in seen.get(key, []) if abs(c - a.created_at) <= window and aid != a.id]
        if near:
            copies[a.id] = min(near)[1]
        else:
            seen.setdefault(key, []).append((a.created_at, a.id))
    return copies


# --- content: does the headline say anything? ----------------------------------------------------------
# A scorer reads tone into anything ("Why Amazon stock is moving today" scored bullish 85). Before a score
# can become a signal, articles whose headline is a template or makes no claim are neutral, whatever the
# scorer says. Templates are cut out of the headline first; what is left must carry a claim: a verb of
# change or an event (rise, beat, cut, acquire, sue, ...), a figure (5 %, $2 bn), or enough words of its own.
_NAME = r"(?:[\w.&'\u2019-]+\s+){0,5}?(?:\([\w.:]+\)\s+)?"  # a name of up to five words, maybe "(TICKER)"
_TEMPLATES: tuple[tuple[str, re.Pattern], ...] = tuple((why, re.compile(p, re.I)) for why, p in (
    ("why-is-it-moving template",
     rf"\bwhy\s+(?:is\s+|are\s+)?{_NAME}(?:stocks?\s+|shares?\s+)?(?:is\s+|are\s+)?"
     r"(?:moving|trading|active|in\s+focus|on\s+the\s+move|in\s+the\s+news|trending)\b(?:\s+(?:today|now|this\s+week))?"
     r"|\bwhat'?s\s+(?:going\s+on|happening|up)\s+with\b"),
    ("what-to-watch template",
     r"\b(?:what|things|stocks?|names|levels?|charts?|numbers|reasons)\s+to\s+(?:watch|know|expect|look\s+for|consider)\b"
     r"|\bto\s+watch\s+(?:today|now|this|next|in|on|ahead|before|for)\b|\bwatch\s*list\b|\bon\s+(?:the\s+)?watch\b"
     r"|\bin\s+(?:focus|the\s+spotlight)\b|\bneed[- ]to[- ]know\b|\bwhat\s+to\s+expect\b|\bpreview\b|\bon\s+deck\b"
     r"|\b(?:what\s+)?you\s+(?:need|should|must|want)\s+to\s+know\b(?:\s+(?:before|about|now|today)\b(?:\s+the\s+bell)?)?"
     r"|\b(?:facts|things)\s+to\s+know(?:\s+before\s+betting\s+on\s+it)?\b|\beverything\s+(?:you\s+need\s+)?to\s+know\b"),
    ("quote page",
     r"\b(?:live|real[- ]time|delayed)\s+(?:stock\s+|share\s+)?(?:quotes?|prices?|charts?|updates?|blog|coverage)\b"
     r"|\b(?:stock|share)\s+(?:quotes?|charts?)\b|\bquotes?\s*(?:&|and|,)\s*(?:history|charts?|news)\b|\bquotes?\b"
     r"|\b(?:stock\s+)?price\s*(?:,|&|and)\s*(?:news|quotes?|charts?)\b|\b(?:stock|share)\s+price\s+(?:today|now|history|live)\b"
     r"|\blive\s+updates?\b|\bmarket\s+data\b|\binvestor\s+relations\b"),
    ("transcript",
     r"\b(?:earnings\s+)?(?:call\s+)?transcripts?\b|\bcall\s+(?:replay|recording|highlights)\b|\bslide\s*(?:deck|show)\b"),
    ("what-if template",
     r"\bif\s+you\s+(?:had\s+)?(?:invested|bought|put)\b.*|\bhow\s+much\b.{0,40}\binvested\b.*|\bwould\s+be\s+worth\b.*"
     r"|\bhere'?s\s+how\s+much\b.*"),
    ("data page",
     r"\ba\s+(?:closer\s+|deep(?:er)?\s+)?look\s+(?:into|at)\b|\bdeep\s+dive\b|\boverview\s*:|\boverview\s+of\b"
     r"|\banalyst\s+ratings?\b|\b(?:company|corporate)\s+profile\b|\bkey\s+(?:statistics|stats)\b"
     r"|\b(?:dividend|price|earnings)\s+(?:date|history)\b|\btechnical\s+analysis\b|\bprice\s+predictions?\b(?:\s+for\s+\d+)?"
     r"|\b(?:stock|share)\s+(?:forecasts?|outlook)\b(?:\s+for\s+\d+)?|\boptions?\s+(?:activity|trades?|chain|flow|alert)\b"
     r"|\bwhat\s+the\s+big\s+money\s+is\s+thinking\b|\bmovers\b|\btrending\s+(?:stock|ticker)s?\b|\bstocks?\s+moving\b"
     r"|\bstocks?\s+of\s+the\s+(?:day|week)\b|\bprice\s+over\s+earnings\b|\bp/e\s+ratio\b|\bexplained\b|\bbreaking\s+down\b"),
    ("buy-or-sell question",
     r"\bbuy\s*(?:,|or)\s*(?:sell|hold)\b(?:\s*(?:,|or)\s*(?:sell|hold))?|\bis\s+(?:it|now)\s+(?:the\s+)?time\s+to\s+(?:buy|sell)\b"
     r"|\bshould\s+(?:you|i|investors)\s+(?:buy|sell)\b|\ba\s+(?:buy|sell)\s+(?:right\s+)?now\b"),
))
# verbs and words of change: they state a move (also inside a question: "Why is Tesla stock falling?")
_CHANGE_WORDS = (
    "up down low high lows highs higher lower top tops topped flat mixed steady unchanged record best worst "
    "strong stronger weak weaker solid robust upbeat bullish bearish positive negative boom bust crisis recession rout "
    "turmoil pop pops popped dive dives dived bull bear pain toxic hit hits in-line inline upside downside hike hikes "
    "meet meets met grim bright dismal stellar great impressive phenomenal terrible awful winner winners loser losers "
    "upward downward"
).split()
_CHANGE_STEMS = (
    "ris[eion] rose beat miss fall fell drop declin decreas increas grow grew gain los[est] climb jump soar surg plung plummet "
    "tumbl slid slip sink sank sunk slump rall rebound bounc recover spik skyrocket crash dipp? tank swing swung edg "
    "inch extend eras pare shed lift boost exceed surpass outperform underperform upgrad downgrad upped rais hiked cut "
    "slash trim reduc doubl tripl halv expand shrink shrank widen narrow strengthen weaken improv worsen deteriorat "
    "accelerat slow stall surpris disappoint warn optimis pessimis fear concern worr hope selloff sell-off volatil "
    "squeez breakout uptrend downtrend overweight underweight collaps sour evaporat wipe add flat stabili halt suspend "
    "delay cancel postpon resum restart dump struggl emergenc vanish fizzl weigh suffer success thriv resilien "
    "constructive benefit rival burn stumbl revers outflow inflow continu dominat remain pil"
).split()
# events: something happened or was decided
_EVENT_WORDS = (
    "buys bought sells sold sue sues sued deal pact ban bans fine fined ipo win wins won vs versus says said say sees "
    "likes faces bet bets short long buy sell buying selling"
).split()
_EVENT_STEMS = (
    "acquir acquisition merg takeover agree partner launch unveil introduc releas approv clear reject den[yi] block "
    "suing lawsuit probe investigat charg penalt settl recall bankrupt default layoff fire hire resign appoint named "
    "replac oust strike breach hack outage buyback repurchas offering delist spin award contract order deliver shipment "
    "demand shortage tariff sanction subsid stimulus invests invested investment stake funding plan expect rated "
    "initiat reiterat maintain announc confirm complet clos sign filed seek join exit leav quit kill death dead pull "
    "withdraw retreat advanc outpac lag trail pressur declar start"
).split()


def _words(words: list[str], stems: list[str]) -> str:
    return rf"\b(?:{'|'.join(re.escape(w) for w in words)})\b|\b(?:{'|'.join(stems)})\w*"


_FIGURE = r"\d\s*%|[$\u20ac\u00a3]\s*\d|\d\s*(?:bn|bln|billion|tn|trillion|mn|mln|million|m|b|k)\b|(?<![\w.])[+-]\d|\U0001f4c8|\U0001f4c9"
_DIRECTION = re.compile(rf"{_words(_CHANGE_WORDS, _CHANGE_STEMS)}|{_FIGURE}", re.I)
_CLAIM = re.compile(rf"{_words(_CHANGE_WORDS + _EVENT_WORDS, _CHANGE_STEMS + _EVENT_STEMS)}|{_FIGURE}", re.I)
_NOISE = re.compile(r"https?://\S+|www\.\S+|\$[A-Za-z][A-Za-z.]{0,6}\b|@\w+|#")
_WORD = re.compile(r"[^\W\d_][\w'\u2019.&-]*")
# words that name a stock, a market or a topic without saying anything about it
_EMPTY = frozenset((
    "a an the of for in on at to and or with by from as is are be its it's this that these those here's here there "
    "what why how who when will can should could would do does did it you your we our their his her new now today "
    "today's tonight week weekly month year stock stocks share shares equity company co corp inc ltd plc group "
    "holdings stock's price prices quote quotes chart charts news update updates market markets report reports "
    "analysis data info information latest daily live time trading trader traders investor investors investing nyse "
    "nasdaq otc tsx cve etf fund q1 q2 q3 q4 fy h1 h2 earnings results revenue sales eps outlook forecast forecasts "
    "target targets estimate estimates guidance rating ratings dividend dividends split splits date dates history "
    "profile overview active midday trade session morning afternoon premarket movers mover hot watch focus"
).split())
_MAX_CONTENT_WORDS = 2  # without a claim word, more words of its own than this and the scorer decides
# a name: up to four words right before "(TICKER)", "stock", "shares" or "'s"
_NAMED = re.compile(r"(?:[\w.&'\u2019-]+\s+){0,3}[\w.&-]+(?=\s*\([\w.:]+\)|\s+(?:stock|shares)\b|['\u2019]s\b)", re.I)


def no_information(headline: str, summary: str = "") -> str | None:
    """Why an article says nothing to trade on ("template: quote page", "question without a claim",
    "no claim: no verb of change"), or None when it does. The headline decides; a summary that says
    something rescues a headline that does not."""
    why = _judge(headline)
    if why and summary and _judge(summary) is None:
        return None
    return why


def _judge(text: str) -> str | None:
    rest = _NOISE.sub(" ", strip_wire(text))
    template = None
    for why, pattern in _TEMPLATES:
        rest, n = pattern.subn(" ", rest)
        template = template or (why if n else None)
    if text.rstrip().endswith("?") and not template and not _DIRECTION.search(rest):
        return "question without a claim"
    if _CLAIM.search(rest):
        return None
    if template:
        return f"template: {template}"
    own = [w for w in _WORD.findall(_NAMED.sub(" ", rest, count=1))
           if w.casefold().strip(".'\u2019") not in _EMPTY and not (w.strip(".").isupper() and len(w.strip(".")) <= 5)]
    if len(own) <= _MAX_CONTENT_WORDS:
        return "no claim: no verb of change"
    return None


def without_information(articles: Iterable[Article], scorer: str) -> tuple[list[Article], list[Score]]:
    """The content rule before any score can become a signal: an article that says nothing is not
    sent to the scorer but scored neutral, conviction 0, with the reason ("no information: ...").
    Returns (the articles for the scorer, the neutral scores of the others)."""
    todo: list[Article] = []
    quiet: list[Score] = []
    for a in articles:
        why = no_information(a.headline, a.summary)
        if why is None:
            todo.append(a)
        else:
            quiet += [Score(a.id, sym, "neutral", 0, f"no information: {why}", scorer) for sym in dict.fromkeys(a.symbols)]
    return todo, quiet
