"""``autotune optimize``: choose the cheapest policy that meets an SLO target on the user's own traffic.

The recorded traffic is split in time (:mod:`.split`): every candidate (:mod:`.candidates`) is simulated on the
earlier part and the later part as a grid of Ray tasks (:mod:`.grid`); the choice (:mod:`.choose`) sees only the
earlier part, the report (:mod:`.report`) shows both, so the later part's figure is one the choice never saw.
:mod:`.run` puts the steps together; :mod:`.cli` is the command.
"""
