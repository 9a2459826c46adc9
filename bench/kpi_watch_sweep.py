"""How the tracking and anomaly rules behave on the sandbox's ground truth, over many days.

    python bench/kpi_watch_sweep.py              # 18 anchor days, 4 demo clients, 90 days each
    python bench/kpi_watch_sweep.py --spikes     # also plant a tenfold spike on every 3rd day

Prints the alerts both rules raise on normal days (the false alarms; the test suite checks
one anchor, `test_kpi_watch_rules.py`), the lowest share of its expected conversions any
judged normal day had (the tracking rule's margin to its 10 %), and with --spikes how many
tenfold spend spikes, planted one at a time, stayed inside their band, by days before the
anchor. Pure functions only: a minute or two, no pipeline run.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import date, timedelta

from metrics_pipeline.domain.anomalies import AnomalyRule, DayKpis, kpi_anomalies
from metrics_pipeline.domain.kpis import ratio
from metrics_pipeline.domain.tracking import DayFigures, TrackingRule, judge_days, tracking_break
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.world import DEMO_ACCOUNTS, World

ANCHORS = [date(2026, 11, 18) + timedelta(days=23 * i) for i in range(-12, 6)]
DAYS = 90
HISTORY = DAYS + 16 * 7  # the tracking rule's baselines reach 12 weeks back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spikes", action="store_true", help="plant tenfold spikes too")
    args = parser.parse_args()
    anomaly_rule, tracking_rule = AnomalyRule(), TrackingRule()
    breaks, anomalies, missed, lowest = 0, [], Counter(), None
    for anchor in ANCHORS:
        world = World(anchor=anchor)
        judged = [anchor - timedelta(days=n) for n in range(DAYS, 0, -1)]
        for spec in DEMO_ACCOUNTS:
            account = f"act_{spec.account_id}"
            days = [anchor - timedelta(days=n) for n in range(HISTORY, 0, -1)]
            truth = {d: day_truth(world, account, d, 0, anchor) for d in days}
            figures = [DayFigures(d, truth[d].spend, truth[d].reservations) for d in days]
            for verdict in judge_days(figures, tracking_rule):
                if verdict.figures.day in judged and verdict.expected:
                    share = verdict.figures.conversions / verdict.expected
                    lowest = share if lowest is None else min(lowest, share)
            for end in judged:
                breaks += (
                    tracking_break([f for f in figures if f.day <= end], tracking_rule) is not None
                )
            kpis = [
                DayKpis(
                    d,
                    t.spend,
                    t.total_conversions,
                    t.reservations,
                    ratio(int(t.spend * 100), t.total_conversions * 100),
                    ratio(int(t.reservation_value * 100), int(t.spend * 100)),
                )
                for d, t in truth.items()
            ]
            found, _ = kpi_anomalies(kpis, judged, anomaly_rule)
            anomalies += [(anchor, spec.name, a.day, a.metric) for a in found]
            if args.spikes:
                for day in judged[::3]:
                    spiked = [
                        DayKpis(k.day, k.spend * 10, k.conversions, k.reservations, k.cpa, k.roas)
                        if k.day == day
                        else k
                        for k in kpis
                    ]
                    caught, _ = kpi_anomalies(spiked, [day], anomaly_rule)
                    if (day, "spend") not in {(a.day, a.metric) for a in caught}:
                        missed[(anchor - day).days] += 1
    client_days = len(ANCHORS) * len(DEMO_ACCOUNTS) * DAYS
    print(f"normal client-days judged: {client_days} ({len(ANCHORS)} anchors)")
    print(f"tracking breaks raised: {breaks}; lowest share of expected conversions: {lowest:.3f}")
    print(f"KPI anomalies raised: {len(anomalies)} {anomalies[:10]}")
    if args.spikes:
        planted = len(ANCHORS) * len(DEMO_ACCOUNTS) * len(range(0, DAYS, 3))
        print(f"tenfold spikes inside their band: {sum(missed.values())} of {planted}")
        print(f"  by days before the anchor: {sorted(missed.items())}")


if __name__ == "__main__":
    main()
