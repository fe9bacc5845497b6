"""Alert thresholds: the defaults a pack gives, and crossings."""

import numpy as np

from emolab.core.pack import FALLBACK_ALERT_Z as FALLBACK_Z
from emolab.tui.monitor import Monitor, default_thresholds


def test_default_thresholds_come_from_the_pack_and_never_go_below_the_fallback():
    assert default_thresholds({}) == {"desperate": FALLBACK_Z, "hostile": FALLBACK_Z, "afraid": FALLBACK_Z}
    chosen = default_thresholds({"desperate": 4.29, "hostile": 2.1, "calm": 9.0})
    assert chosen == {"desperate": 4.29, "hostile": FALLBACK_Z, "afraid": FALLBACK_Z}


def test_an_alert_fires_when_a_readout_rises_through_and_not_while_it_stays_above():
    monitor = Monitor(["calm", "afraid"], {"afraid": 4.0, "unknown": 1.0})
    assert monitor.thresholds == {"afraid": 4.0}
    readings = [3.9, 4.2, 5.0, 3.0, 4.0]
    fired = [bool(monitor.check(np.array([0.0, z]), index, "x")) for index, z in enumerate(readings)]
    assert fired == [False, True, False, False, True]
