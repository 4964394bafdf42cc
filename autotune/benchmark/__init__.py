"""The held-out benchmark: its cases, the runs over them, the price breakdown, and the results report.

``cases`` says what is measured (the workloads no policy trained on), ``heldout`` runs every case under a set
of policies, ``price`` splits what each policy pays above the oracle, ``results`` reads the committed results
(for notebooks) and ``report`` turns them into ``docs/results.md`` and the README's tables.
"""
