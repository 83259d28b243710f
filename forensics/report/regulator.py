"""The report's section for the supervisory authority (GDPR Art. 33(3)): filled from the
logs where they speak, with marked blanks for what only the controller knows.
"""

from __future__ import annotations

from forensics.report.figures import ReportData, instant
from forensics.report.sections import Block, Section, n, people


def regulator_section(data: ReportData) -> Section:
    s = Section("gdpr", "For the supervisory authority (GDPR Art. 33(3))")
    s.p(
        "Filled from the logs where they speak; the marked blanks can only be completed by "
        "the controller."
    )
    _add_breach_nature(s, data)
    s.blocks.append(
        Block(
            "blank",
            heading="(b) Name and contact details of the data "
            "protection officer or other contact point",
            text="To be completed by the controller.",
        )
    )
    _add_breach_consequences(s, data)
    _add_breach_measures(s, data)
    return s


def _add_breach_nature(s: Section, data: ReportData) -> None:
    """Art. 33(3)(a): what was disclosed, to how many, and the blank the logs cannot fill."""
    f = data.figures
    span = data.span
    when = f"in the window {data.window}"
    if span is not None and span.first_in_window is not None:
        when = f"between {instant(span.first_in_window)} and {instant(span.last_in_window)} UTC"
    owners = data.people_totals.get("owner", (0, 0))
    recipients = data.people_totals.get("recipient", (0, 0))
    outside = f["cross_account_deliveries_outside_window"]
    if data.zero_findings:
        s.blocks.append(
            Block(
                "p",
                heading="(a) Nature of the breach, categories and "
                "approximate numbers of data subjects and records",
                text=f"The logs show no cross-account delivery in the window "
                f"{data.window}: no breach of this kind is evidenced for it.",
            )
        )
        if outside:
            s.p(
                f"But {people(outside, 'delivery', 'deliveries')} without a grant fall "
                "outside the window"
                + (
                    f" (from {instant(span.first_overall)} to {instant(span.last_overall)})"
                    if span is not None
                    else ""
                )
                + ": the window may not cover the breach (see Timeline). Whether they "
                "belong to it is for the controller to decide."
            )
    else:
        s.blocks.append(
            Block(
                "p",
                heading="(a) Nature of the breach, categories and "
                "approximate numbers of data subjects and records",
                text=f"Unauthorized disclosure (confidentiality): {when}, "
                "thumbnails of camera events from "
                f"{people(f['exposed_devices'], 'camera', 'cameras')} were "
                f"shown to {people(f['recipients'], 'account', 'accounts')} "
                "with no grant on those cameras ("
                f"{people(f['cross_account_deliveries'], 'delivery', 'deliveries')}"
                f"); {people(f['tappers'], 'account', 'accounts')} opened one "
                f"({people(f['cross_account_taps'], 'tap', 'taps')}) and "
                f"{n(f['video_viewers'])} played the event's video "
                f"({people(f['cross_account_plays'], 'play', 'plays')}).",
            )
        )
        s.p(
            f"Data subjects whose data was disclosed: about {n(owners[0])} owners of the "
            "exposed cameras, and the people their footage shows (see the blank below). "
            f"Account holders who were shown content not theirs: {n(recipients[0])} (their "
            "accounts were involved; the content was not about them). Records: about "
            f"{people(f['cross_account_deliveries'], 'event thumbnail', 'event thumbnails')} "
            f"and {people(f['cross_account_plays'], 'video play', 'video plays')}."
        )
        if outside and span is not None:
            s.p(
                f"A further {n(outside)} deliveries without a grant fall outside the window "
                f"(all of them run from {instant(span.first_overall)} to "
                f"{instant(span.last_overall)}); they are not counted here. Whether they "
                "belong to this breach is for the controller to decide (see Timeline)."
            )
    s.blank(
        "People visible or audible in the exposed footage (household members, visitors) "
        "and what the footage shows are not in the logs: to be completed by the controller."
    )


def _add_breach_consequences(s: Section, data: ReportData) -> None:
    """Art. 33(3)(c): how far the content travelled, and the controller's assessment."""
    f = data.figures
    if data.zero_findings:
        text = "No disclosure of this kind is evidenced in the window."
    else:
        text = (
            f"The logs show how far the content travelled: {n(f['recipients'])} accounts "
            f"were shown thumbnails, {n(f['tappers'])} opened one and "
            f"{n(f['video_viewers'])} played a video (the most intrusive exposure)."
        )
    s.blocks.append(Block("p", heading="(c) Likely consequences of the breach", text=text))
    s.blank(
        "The controller's assessment of the consequences for the people concerned "
        "(e.g. footage from inside homes, risk of stalking or burglary): to be completed "
        "by the controller."
    )


def _add_breach_measures(s: Section, data: ReportData) -> None:
    """Art. 33(3)(d): the notification lists, and the measures only the controller knows."""
    anyone = data.people_totals.get("any", (0, 0))
    s.blocks.append(
        Block(
            "p",
            heading="(d) Measures taken or proposed",
            text=(
                f"Notification lists for the {n(anyone[0])} people affected can be written with "
                f"forensics notify (see Evidence); {n(anyone[1])} of them have no email and "
                "need another channel."
            )
            if anyone[0]
            else "Nobody needs to be notified for this window, by the logs"
            + (
                ", but deliveries without a grant fall outside it: a wider window may "
                "find people to notify."
                if data.figures["cross_account_deliveries_outside_window"]
                else "."
            ),
        )
    )
    s.blank(
        "Measures taken to stop the disclosure and mitigate its effects (e.g. the faulty "
        "cache build withdrawn, dates; sessions or thumbnails revoked): to be completed by "
        "the controller."
    )
