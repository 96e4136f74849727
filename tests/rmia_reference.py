"""RMIA-offline's calibration games as first written (slow, plain numpy): the independent reference the tests of
the choice of ``a`` compare the fast search with."""

import numpy as np

from memberscope.attacks.rmia import _log


def calibration_games(attack):
    """Each reference model playing the target in turn: ``(member, log_p_x, p_out_x, log_p_z, p_out_z)`` per game,
    the candidates in pool-then-population order (the population's even half is the comparison set ``z``)."""
    k, m = attack.p_ref_.shape[0], attack.p_ref_population_.shape[1]
    if k < 2 or m < 2:
        return []
    z_half, cand_half = np.arange(0, m, 2), np.arange(1, m, 2)
    games = []
    for j in range(min(k, attack.calibration_models)):
        others = np.arange(k) != j
        out = ~attack.masks_[others]
        n_out = out.sum(axis=0)
        keep = n_out > 0
        p_out = (attack.p_ref_[others] * out).sum(axis=0)[keep] / n_out[keep]
        p_out_z = attack.p_ref_population_[others].mean(axis=0)
        member = np.concatenate([attack.masks_[j, keep], np.zeros(cand_half.size, bool)])
        if member.all() or not member.any():
            continue
        log_p_x = _log(np.concatenate([attack.p_ref_[j, keep], attack.p_ref_population_[j, cand_half]]))
        p_out_x = np.concatenate([p_out, p_out_z[cand_half]])
        games.append((member, log_p_x, p_out_x, _log(attack.p_ref_population_[j, z_half]), p_out_z[z_half]))
    return games
