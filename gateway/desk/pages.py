"""The HTML of the desk and the board, rendered on the server (pure functions of their
data; every value is escaped here and nowhere else).

Why no template engine or front-end framework: the pages are a login form, one card
and a few tables, live updates are a few lines of our own JavaScript around
EventSource, and the charts are SVG drawn on the server (gateway/desk/chart.py). An
air-gapped site then serves everything from this package, and there is no other
project's code to vendor, audit or keep up to date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from gateway.desk.pop import OUTCOME_NAMES, RATING_NAMES, STATE_NAMES, Card
from gateway.store.tallies import Funnel

STATIC = "/desk/static"
# The kinds of evidence of a reply's reading (sms/understand/cues.py), as agents read
# them; an id not listed shows as it is.
CUE_NAMES = {
    "digit": "选项数字",
    "rating_word": "评价用语",
    "opinion_word": "好坏评语",
    "emoji": "表情",
    "complaint": "投诉内容",
    "praise": "表扬感谢",
    "negation": "否定",
    "rhetorical": "反问",
    "degree": "程度词",
    "sarcasm": "反讽",
    "contrast": "转折",
    "later": "前后对比",
    "summary": "总结",
    "self_correction": "自我更正",
    "correction": "更正前次回复",
    "homophone": "同音错字",
    "other_party": "针对他人",
    "question": "提问",
    "undecided": "未做选择",
    "several_digits": "多个数字",
    "not_a_rating": "非评价",
    "opt_out": "退订",
    "acknowledgement": "仅表示收到",
    "non_answer": "答非所问",
    "encoding": "编码错误",
    "complaint_beside_praise": "表扬中带投诉",
    "mixed": "褒贬混杂",
    "concession": "让步（虽然…）",
    "unexplained": "含未解释的词，需人工核实",
    "weighed": "规则未能确定，由模型判断",
}


def e(value: object) -> str:
    """Escaped text for HTML (quotes included: safe in attributes)."""
    return escape(str(value), quote=True)


def layout(
    title: str, body: str, *, user: str = "", csrf: str = "", page: str = "", refresh: str = ""
) -> str:
    """A whole page: header with the user and a logout button, the body, our assets."""
    nav = ""
    if user:
        nav = (
            f'<nav><span class="who">{e(user)}</span>'
            f'<form method="post" action="/desk/logout" class="inline">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            f'<button type="submit" id="logout">退出登录</button></form></nav>'
        )
    return (
        "<!doctype html>\n"
        '<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · 民意网关</title>"
        f'<link rel="stylesheet" href="{STATIC}/desk.css"></head>'
        f'<body data-page="{e(page)}" data-refresh="{e(refresh)}">'
        f"<header><h1>民意回访 · {e(title)}</h1>{nav}</header>"
        f"<main>{body}</main>"
        f'<script src="{STATIC}/desk.js" defer></script></body></html>'
    )


def login_page(csrf: str, message: str = "", user_id: str = "") -> str:
    """The login form (agents and supervisors alike)."""
    error = f'<p class="error" role="alert">{e(message)}</p>' if message else ""
    body = (
        '<section class="login"><h2>登录</h2>'
        f"{error}"
        '<form method="post" action="/desk/login">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<label>工号<input name="user" id="user" autocomplete="username" required '
        f'value="{e(user_id)}"></label>'
        '<label>密码（PIN）<input name="pin" id="pin" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit" id="login">登录</button></form></section>'
    )
    return layout("登录", body, page="login")


def _reasons(tags: Sequence[str], labels: Mapping[str, str]) -> str:
    return "、".join(labels.get(t, t) for t in tags) or "—"


def card_html(
    c: Card, *, labels: Mapping[str, str], csrf: str, wrapup_s: float, ended_ts: float | None
) -> str:
    """The screen pop of one call, with the disposition form."""
    rows = [
        ("市民", f'<span class="citizen" id="citizen">{e(c.citizen)}</span>'),
        ("业务类型", e(c.service)),
        ("办理单位", e(c.unit)),
        ("民警", e(c.officer or "—")),
        ("办理时间", e(c.occurred_at)),
        ("状态", f'<span id="state">{e(STATE_NAMES.get(c.state, c.state))}</span>'),
    ]
    info = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    sms = f'<p class="sms">{e(c.sms_text)}</p>' if c.sms_text else '<p class="muted">—</p>'
    reply = '<p class="muted">市民未回复短信</p>'
    if c.reply is not None:
        r = c.reply
        revised = ""
        if r.revised_to:
            now = RATING_NAMES.get(r.revised_to, r.revised_to)
            revised = f'<span class="revised">后更正为 {e(now)}</span>'
        why = "".join(f"<li>{e(x)}</li>" for x in r.explanation)
        reply = (
            f'<blockquote id="reply-text">{e(r.text)}</blockquote>'
            f'<p>评价：<strong class="rating {e(r.rating)}" id="rating">'
            f"{e(RATING_NAMES.get(r.rating, r.rating))}</strong>{revised}"
            f' · 原因：<span id="reasons">{e(_reasons(r.reasons, labels))}</span>'
            f' · <span class="muted">{e(r.at)}</span></p>'
            f'<details open><summary>判断依据</summary><ul class="why">{why}</ul>'
            f'<p class="muted">线索：{e("、".join(CUE_NAMES.get(c, c) for c in r.cues) or "—")}'
            f"{'；提示：' + e(r.hint) if r.hint else ''}</p></details>"
        )
    attempts = "".join(
        f"<li>第{a.attempt}次 {e(a.at)} {e(OUTCOME_NAMES.get(a.outcome, a.outcome))}"
        f"{'（' + e(a.agent) + '）' if a.agent else ''}</li>"
        for a in c.attempts
    )
    earlier = f'<ul class="attempts">{attempts}</ul>' if attempts else '<p class="muted">无</p>'
    second = ""
    if c.second_callback:
        second = (
            '<section class="second"><h3>二次回访</h3>'
            f"<p>工单：{e(c.work_order or '—')}</p><p>说明：{e(c.note or '—')}</p></section>"
        )
    countdown = ""
    if ended_ts is not None and c.disposition is None:
        countdown = (
            f'<p class="wrapup" id="wrapup" data-ended="{ended_ts:.3f}" '
            f'data-wrapup="{wrapup_s:.0f}">话后整理：剩余 <b>{wrapup_s:.0f}</b> 秒</p>'
        )
    return (
        f'<article class="card" id="card" data-callback="{e(c.callback_id)}" '
        f'data-survey="{e(c.survey_id)}" data-state="{e(c.state)}">'
        f'<div class="cols"><section><h2>来电市民</h2><table class="info">{info}</table>'
        f"<h3>已发短信</h3>{sms}<h3>早先回访</h3>{earlier}{second}</section>"
        f"<section><h2>市民回复</h2>{reply}{countdown}"
        f"{_disposition_form(c, labels, csrf)}</section></div></article>"
    )


def _disposition_form(c: Card, labels: Mapping[str, str], csrf: str) -> str:
    if c.disposition is not None:
        d = c.disposition
        return (
            '<p class="done" id="done">处理结果已提交：'
            f"{'属实' if d.get('upheld') else '不属实'}，"
            f"{e(_reasons(d.get('reasons') or (), labels))}（{e(d.get('agent', ''))}）</p>"
        )
    ready = c.ready_for_disposition
    checks = "".join(
        f'<label class="check"><input type="checkbox" name="reasons" value="{e(tag)}">'
        f"{e(label)}</label>"
        for tag, label in labels.items()
    )
    ratings = "".join(
        f'<option value="{k}">{e(v)}</option>' for k, v in RATING_NAMES.items() if k != "unknown"
    )
    hint = "" if ready else '<p class="muted" id="wait-hint">通话结束后即可提交</p>'
    return (
        '<form method="post" action="/desk/disposition" class="disposition" id="disposition">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<input type="hidden" name="callback_id" value="{e(c.callback_id)}">'
        "<h3>处理结果</h3>"
        "<fieldset><legend>投诉是否属实</legend>"
        '<label><input type="radio" name="upheld" value="1" required id="upheld-yes">属实</label>'
        '<label><input type="radio" name="upheld" value="0" id="upheld-no">不属实</label>'
        f"</fieldset><fieldset><legend>原因</legend>{checks}</fieldset>"
        '<label class="block">核实后的评价 <select name="rating" id="rating-select">'
        f'<option value="">不修改</option>{ratings}</select></label>'
        '<label class="block">备注<textarea name="note" rows="2" maxlength="2000" id="note">'
        "</textarea></label>"
        f'<button type="submit" id="submit-disposition"{"" if ready else " disabled"}>'
        f"提交处理结果</button>{hint}</form>"
    )


def desk_page(
    *,
    user: str,
    csrf: str,
    units: Sequence[str],
    card: str,
    state: str | None,
    message: str = "",
) -> str:
    """The agent's desk: state and the agent's actions, the pop (live over SSE)."""
    flash = f'<p class="flash" id="flash">{e(message)}</p>' if message else ""
    buttons = "".join(
        f'<form method="post" action="/desk/agent/{action}" class="inline">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<button type="submit" id="act-{action}">{label}</button></form>'
        for action, label in (
            ("login", "签入"),
            ("pause", "暂停接听"),
            ("unpause", "恢复接听"),
            ("logout", "签出"),
        )
    )
    waiting = '<p class="waiting" id="waiting">等待来电……</p>'
    return layout(
        "坐席工作台",
        f'<section class="bar"><span>坐席 <b id="agent">{e(user)}</b></span>'
        f"<span>队列：{e('、'.join(units) or '—')}</span>"
        f'<span>状态：<b id="agent-state">{e(state or "未知")}</b></span>{buttons}'
        f'<span class="live" id="live">实时连接中</span></section>{flash}'
        f'<div id="pop">{card or waiting}</div>',
        user=user,
        csrf=csrf,
        page="desk",
    )


def funnel_row(name: str, f: Funnel, *, total: bool = False) -> str:
    """One row of the funnel table (percentages as the board shows them)."""

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{x:.1f}%"

    cells: list[tuple[str, Any]] = [
        ("surveys", f.surveys),
        ("delivered", pct(f.delivered_pct)),
        ("replied", pct(f.replied_pct)),
        ("satisfied", pct(f.rating_pct("satisfied"))),
        ("basically", pct(f.rating_pct("basically_satisfied"))),
        ("unsatisfied", pct(f.rating_pct("unsatisfied"))),
        ("optouts", f.optouts),
        ("connected", pct(f.connected_pct)),
        ("closed", pct(f.closed_pct)),
        ("rechecks", f.rechecks),
    ]
    tds = "".join(f'<td data-k="{k}">{e(v)}</td>' for k, v in cells)
    return f'<tr class="{"total" if total else ""}"><th>{e(name)}</th>{tds}</tr>'


FUNNEL_HEAD = (
    "<tr><th>单位</th><th>调查数</th><th>送达率</th><th>回复率</th><th>满意</th>"
    "<th>基本满意</th><th>不满意</th><th>退订</th><th>回访接通率</th><th>办结率</th>"
    "<th>二次回访</th></tr>"
)


def live_html(
    agents: Sequence[tuple[str, str, str]],
    calls: int,
    waiting: Sequence[tuple[str, int, str]],
) -> str:
    """The live panel: agents (unit, agent, state), calls in progress, callbacks waiting
    per unit queue with the oldest wait."""
    rows = (
        "".join(
            f'<tr><td>{e(u)}</td><td>{e(a)}</td><td class="st">{e(s)}</td></tr>'
            for u, a, s in agents
        )
        or '<tr><td colspan="3" class="muted">无坐席</td></tr>'
    )
    queue_rows = (
        "".join(
            f'<tr><td>{e(u)}</td><td data-k="waiting">{n}</td><td>{e(age)}</td></tr>'
            for u, n, age in waiting
        )
        or '<tr><td colspan="3" class="muted">无</td></tr>'
    )
    return (
        '<div class="live-grid"><section><h3>坐席</h3><table class="grid">'
        f"<tr><th>单位</th><th>坐席</th><th>状态</th></tr>{rows}</table></section>"
        f'<section><h3>回访</h3><p>通话中：<b id="calls">{calls}</b></p>'
        '<table class="grid"><tr><th>队列</th><th>等待</th><th>最久等待</th></tr>'
        f"{queue_rows}</table></section></div>"
    )


def board_page(
    *,
    user: str,
    csrf: str,
    day: str,
    live: str,
    rows: str,
    reasons: Sequence[tuple[str, int]],
    verified: Sequence[tuple[str, int]],
    charts: str,
    labels: Mapping[str, str],
) -> str:
    """The supervisor's board: reasons from the citizens' SMS and those the agents
    verified on the callbacks, each ranked."""

    def ranked(items: Sequence[tuple[str, int]], attr: str) -> str:
        return (
            "".join(
                f'<li><span>{e(labels.get(tag, tag))}</span><b data-{attr}="{e(tag)}">{n}</b></li>'
                for tag, n in items
            )
            or '<li class="muted">无</li>'
        )

    body = (
        '<section class="bar"><form method="get" action="/board/" class="inline">'
        f'<label>日期 <input type="date" name="day" value="{e(day)}" id="day"></label>'
        '<button type="submit">查看</button></form>'
        f'<a class="button" id="export" href="/board/export.csv?day={e(day)}">导出CSV</a></section>'
        f'<section><h2>实时</h2><div id="board-live">{live}</div></section>'
        f'<section><h2>{e(day)} 各单位</h2><table class="grid funnel" id="funnel">'
        f"{FUNNEL_HEAD}{rows}</table></section>"
        f'<div class="cols"><section><h2>图表</h2>{charts}</section>'
        '<section><h2>不满意原因排行（市民短信）</h2><ol class="reasons" id="reasons">'
        f"{ranked(reasons, 'reason')}</ol>"
        '<h2>回访核实原因</h2><ol class="reasons" id="verified">'
        f"{ranked(verified, 'verified')}</ol></section></div>"
    )
    return layout("督导看板", body, user=user, csrf=csrf, page="board", refresh="/board/live")


def message_page(title: str, message: str, status_link: str = "/desk/login") -> str:
    """A short page for a refusal (a form without its token, a page of another role)."""
    return layout(
        title, f'<p class="error">{e(message)}</p><p><a href="{e(status_link)}">返回</a></p>'
    )
